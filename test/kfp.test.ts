/**
 * KubeFlow: the KFP v2 component and the sample pipeline under kfp/, run by kfp's local runner
 * (SubprocessRunner, no cluster), against the running API, the real Temporal server and the real MLflow server.
 * A real KubeFlow step starts a real lifecycle; a step with a wrong token fails and starts nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowNotFoundError } from '@temporalio/client';
import { getState } from '../src/client.js';
import { lifecycleWorkflowId } from '../src/workflows/definitions.js';
import { buildServer, type ApiServer } from '../src/api/server.js';
import { loadApiConfig } from '../src/config/api.js';
import { testApiEnv } from './support/identity.js';
import { createLogger } from '../src/observability/log.js';
import { parsePolicy } from '../src/policy/load.js';
import type { PolicySource } from '../src/activities/registry.js';
import type { MlflowClient } from '../src/mlflow/client.js';
import { PROJECT_ROOT } from '../src/stack/embedded.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';
import { registerTrainedVersion, testMlflow } from './support/fixtures.js';
import { eventually, startTestWorker, type RunningWorker } from './support/worker.js';

const POLICY = `
defaults:
  evaluation: { thresholds: ["accuracy >= 0.9"] }
  approval: { approvers: [alice], fourEyes: true, quorum: 1, expiresAfter: 1h }
  deployment: { mode: registry }
models:
  base:
`;
const TOKEN = 'tok-kubeflow-0123456789abcdef';
/** The venv holding kfp (python/requirements-kfp.txt); MODELGATE_KFP_PYTHON overrides it. */
const PYTHON = process.env.MODELGATE_KFP_PYTHON ?? join(PROJECT_ROOT, '.venv', 'bin', 'python');

function runLocal(args: string[], token: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      PYTHON,
      [join(PROJECT_ROOT, 'kfp', 'run_local.py'), ...args, '--root', mkdtempSync(join(testStack().dataDir, 'kfp-'))],
      { env: { ...process.env, MODELGATE_API_TOKEN: token }, timeout: 180_000, maxBuffer: 16 * 1024 * 1024, cwd: testStack().dataDir },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

function lastJson(stdout: string): { workflowId?: string } {
  const line = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as { workflowId?: string };
}

describe('KubeFlow component', () => {
  let env: TestWorkflowEnvironment;
  let mlflow: MlflowClient;
  let worker: RunningWorker;
  let app: ApiServer;
  let apiUrl: string;

  before(async () => {
    await new Promise<void>((resolve, reject) =>
      execFile(PYTHON, ['-c', 'import kfp.local'], (err) =>
        err ? reject(new Error(`kfp is not importable by ${PYTHON}: run scripts/ensure-python.sh (installs python/requirements-kfp.txt) or set MODELGATE_KFP_PYTHON`)) : resolve(),
      ),
    );
    env = await connectTestEnv();
    mlflow = testMlflow(testStack().mlflowUri);
    const set = parsePolicy(POLICY, 'kfp-test-policy.yaml');
    const policies: PolicySource = { policyFor: (model) => ({ ...set.policyFor('base'), model }) };
    worker = await startTestWorker(env, { mlflow, policies });
    app = buildServer({
      client: env.client,
      config: loadApiConfig(testApiEnv({ MODELGATE_API_TOKENS: `${TOKEN}=kubeflow-pipeline` })),
      logger: createLogger('silent'),
      taskQueue: worker.taskQueue,
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    apiUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });

  after(async () => {
    await app?.close();
    await worker?.stop();
    await mlflow?.close();
    await env?.teardown();
  });

  it('when the trigger_promotion step runs for a registered version on behalf of dana, then a lifecycle starts, attributed to kubeflow, dana a registrant', async () => {
    const model = unique('kfp');
    const v = await registerTrainedVersion(mlflow, model, { user: 'dana' });
    const r = await runLocal(['trigger', '--api-url', apiUrl, '--model', model, '--version', String(v.version), '--on-behalf-of', 'dana'], TOKEN);
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    assert.equal(lastJson(r.stdout).workflowId, lifecycleWorkflowId(model, v.version));
    const s = await eventually('lifecycle awaiting approval', async () => {
      const st = await getState(env.client, model, v.version);
      return st.phase === 'awaiting_approval' ? st : undefined;
    });
    assert.equal(s.stage, 'Staging');
    assert.deepEqual(s.requestedBy, { identity: 'kubeflow-pipeline', onBehalfOf: 'dana', channel: 'kubeflow' });
    const desc = await env.client.workflow.getHandle(lifecycleWorkflowId(model, v.version)).describe();
    assert.match((await desc.staticDetails()) ?? '', /kubeflow \(kubeflow-pipeline for dana\)/);
  });

  it('when the sample pipeline runs, then it trains, registers a version in MLflow and that version gets a lifecycle', async () => {
    const model = unique('kfp-pipeline');
    const r = await runLocal(['pipeline', '--api-url', apiUrl, '--mlflow-uri', testStack().mlflowUri, '--model', model], TOKEN);
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    assert.equal(lastJson(r.stdout).workflowId, lifecycleWorkflowId(model, 1));
    const mv = await mlflow.getModelVersion(model, 1);
    assert.ok(mv.run_id);
    const run = await mlflow.getRun(mv.run_id);
    assert.ok(run.metrics.accuracy >= 0.9, `accuracy ${run.metrics.accuracy}`);
    await eventually('lifecycle evaluated', async () => {
      const st = await getState(env.client, model, 1);
      return st.evaluation ? st : undefined;
    });
  });

  it('when the step has a wrong token, then the step fails with the API refusal and no lifecycle starts', async () => {
    const model = unique('kfp-denied');
    const v = await registerTrainedVersion(mlflow, model, { user: 'dana' });
    const r = await runLocal(['trigger', '--api-url', apiUrl, '--model', model, '--version', String(v.version)], 'tok-wrong-0123456789abcdef');
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /401 unauthorized/);
    await assert.rejects(env.client.workflow.getHandle(lifecycleWorkflowId(model, v.version)).describe(), WorkflowNotFoundError);
  });
});
