/**
 * A worker in its own process, so a test can SIGKILL it mid-activity: the deployment activities through the
 * production configuration path (MODELGATE_KUBECONFIG → loadK8sConfig → createK8sClient) and a prebuilt
 * test workflow bundle. Prints `ready` once polling.
 *   env: MODELGATE_TEST_TEMPORAL_ADDRESS, MODELGATE_KUBECONFIG, K8S_CHILD_TASK_QUEUE, K8S_CHILD_BUNDLE
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import { createDeployActivities } from '../../src/activities/deploy.js';
import { createK8sClient, loadK8sConfig } from '../../src/config/k8s.js';

const need = (key: string): string => {
  const v = process.env[key];
  if (!v) throw new Error(`${key} is not set`);
  return v;
};

const cfg = loadK8sConfig(process.env);
const connection = await NativeConnection.connect({ address: need('MODELGATE_TEST_TEMPORAL_ADDRESS') });
const worker = await Worker.create({
  connection,
  namespace: 'default',
  taskQueue: need('K8S_CHILD_TASK_QUEUE'),
  workflowBundle: { codePath: need('K8S_CHILD_BUNDLE') },
  // No workflow cache, hence no sticky queue: after this process dies the next workflow task goes straight
  // to the normal queue instead of waiting out the sticky schedule-to-start timeout.
  maxCachedWorkflows: 0,
  activities: createDeployActivities({ k8s: createK8sClient(cfg), heartbeatIntervalMs: 500 }),
});
const running = worker.run();
process.stdout.write('ready\n');
await running;
