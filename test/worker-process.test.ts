/**
 * The worker as deployed (`node dist/src/worker-main.js`, the compose modelgate-worker service) against the test
 * stack's real Temporal and MLflow: it starts from the environment alone, serves modelgate's metrics on
 * MODELGATE_METRICS_ADDRESS, refuses a bad metrics setting with one line, and stops cleanly on SIGTERM.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { request } from 'undici';
import { PROJECT_ROOT } from '../src/stack/embedded.js';
import { freePort } from '../src/stack/processes.js';
import { startMetricsServer } from '../src/observability/metrics-server.js';
import { testStack, unique } from './support/stack.js';
import { eventually } from './support/wait.js';

const WORKER = join(PROJECT_ROOT, 'dist', 'src', 'worker-main.js');

function startWorker(extraEnv: Record<string, string>) {
  const child = spawn(process.execPath, [WORKER], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: testStack().temporalAddress,
      MLFLOW_TRACKING_URI: testStack().mlflowUri,
      MODELGATE_POLICY_FILE: join(PROJECT_ROOT, 'policies', 'policy.yaml'),
      MODELGATE_TASK_QUEUE: unique('worker-process'),
      MODELGATE_LOG_LEVEL: 'warn',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, output: () => output };
}

describe('the worker process', () => {
  it('when MODELGATE_METRICS_ADDRESS is set, then the worker serves modelgate metrics there and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const w = startWorker({ MODELGATE_METRICS_ADDRESS: `127.0.0.1:${port}` });
    try {
      const text = await eventually(`worker metrics on port ${port}`, async () => {
        const res = await request(`http://127.0.0.1:${port}/metrics`);
        return res.statusCode === 200 ? res.body.text() : (await res.body.dump(), undefined);
      });
      for (const name of ['modelgate_promotions_total', 'modelgate_stage_duration_seconds', 'modelgate_rollout_duration_seconds', 'modelgate_process_cpu_seconds_total']) {
        assert.match(text, new RegExp(`^# HELP ${name} `, 'm'), name);
      }
      const other = await request(`http://127.0.0.1:${port}/`);
      assert.equal(other.statusCode, 404);
      await other.body.dump();
    } finally {
      w.child.kill('SIGTERM');
    }
    assert.equal(await w.exited, 0, w.output());
  });

  it('when the metrics address is taken by the Temporal exporter setting, then the worker refuses to start with one line', async () => {
    const w = startWorker({ MODELGATE_METRICS_ADDRESS: '127.0.0.1:9999', MODELGATE_TEMPORAL_METRICS_ADDRESS: '127.0.0.1:9999' });
    assert.notEqual(await w.exited, 0);
    const lines = w.output().trim().split('\n');
    assert.equal(lines.length, 1, w.output());
    assert.match(lines[0], /MODELGATE_METRICS_ADDRESS: must differ from MODELGATE_TEMPORAL_METRICS_ADDRESS/);
  });

  it('when the metrics port is already in use, then startMetricsServer names the setting and the address', async () => {
    const first = await startMetricsServer('127.0.0.1:0');
    const port = Number(new URL(first.url).port);
    try {
      await assert.rejects(startMetricsServer(`127.0.0.1:${port}`), new RegExp(`MODELGATE_METRICS_ADDRESS: cannot listen on 127.0.0.1:${port}`));
    } finally {
      await first.close();
    }
  });
});
