/**
 * P6's worker process: one side only (the real modelgate worker, or a worker of the bare signal-waiting
 * baseline), SDK default settings for both, workflows only — the real side's activities run in the parent
 * process — so its memory holds nothing but that side's parked workflows, not the garbage and allocator growth
 * of the MLflow calls that parking them takes. The parent
 * talks to it over IPC: `status` (cache and in-flight counts), `measure` (GC, then process.memoryUsage()),
 * `stop`. Started with --expose-gc so a measurement is not a snapshot of uncollected garbage.
 */
import { readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import { MlflowClient } from '../src/mlflow/client.js';
import { parsePolicy } from '../src/policy/load.js';
import { createWorker } from '../src/worker.js';
import { createBaselineWorker } from './skeleton-workflows.js';
import { CHILD_CONFIG_ENV, type ChildConfig, type ChildMessage, type ChildRequest, type ChildStatus, type Memory } from './p6-memory.js';

/** process.memoryUsage() with RSS split into anonymous and file-backed pages (Linux; else all anonymous). */
function memory(): Memory {
  const usage = process.memoryUsage();
  let status = '';
  try {
    status = readFileSync('/proc/self/status', 'utf8');
  } catch {
    return { ...usage, rssAnon: usage.rss, rssFile: 0 };
  }
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  const rssAnon = kib('RssAnon');
  return Number.isNaN(rssAnon) ? { ...usage, rssAnon: usage.rss, rssFile: 0 } : { ...usage, rssAnon, rssFile: kib('RssFile') };
}

function send(m: ChildMessage): void {
  process.send?.(m);
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.env[CHILD_CONFIG_ENV] ?? '') as ChildConfig;
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const connection = await NativeConnection.connect({ address: cfg.temporalAddress });
  const closers: Array<() => Promise<void>> = [() => connection.close()];
  let worker: Worker;
  if (cfg.side === 'real') {
    const clientConnection = await Connection.connect({ address: cfg.temporalAddress });
    const mlflow = new MlflowClient({ trackingUri: cfg.mlflowUri, timeoutMs: 15_000 });
    closers.push(() => clientConnection.close(), () => mlflow.close());
    worker = await createWorker({
      connection,
      namespace: cfg.namespace,
      taskQueue: cfg.taskQueue,
      client: new Client({ connection: clientConnection, namespace: cfg.namespace }),
      mlflow,
      policies: parsePolicy(cfg.policyYaml, 'bench-policy.yaml'),
      // Workflow tasks only: no activity is registered, so this worker does not poll for activity tasks.
      workerOptions: { activities: {} },
    });
  } else {
    worker = await createBaselineWorker({
      connection,
      namespace: cfg.namespace,
      taskQueue: cfg.taskQueue,
      bundlePath: cfg.baselineBundlePath,
      activities: {},
    });
  }
  const running = worker.run();
  const status = (): ChildStatus => {
    const s = worker.getStatus();
    return { cached: s.numCachedWorkflows, inFlightActivations: s.numInFlightWorkflowActivations, inFlightActivities: s.numInFlightActivities };
  };
  const gc = (globalThis as { gc?: () => void }).gc;
  process.on('message', (raw) => {
    const req = raw as ChildRequest;
    void (async () => {
      try {
        if (req.cmd === 'status') send({ type: 'status', status: status() });
        else if (req.cmd === 'measure') {
          // Two full collections with a turn of the event loop between them let finalizers run.
          gc?.();
          await new Promise((r) => setImmediate(r));
          gc?.();
          send({ type: 'memory', memory: memory(), status: status() });
        } else if (req.cmd === 'stop') {
          if (worker.getState() === 'RUNNING') worker.shutdown();
          await running;
          for (const close of closers) await close();
          send({ type: 'stopped' });
          process.exit(0);
        }
      } catch (err) {
        send({ type: 'error', message: err instanceof Error ? err.message : String(err) });
      }
    })();
  });
  // The parent went away: do not outlive it.
  process.on('disconnect', () => process.exit(1));
  send({ type: 'ready' });
  await running;
}

main().catch((err: unknown) => {
  send({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
