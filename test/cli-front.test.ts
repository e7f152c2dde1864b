/**
 * The #11 CLI commands as a person runs them (the real program in a child process, real API, Temporal, MLflow):
 * `approve` waits until the version serves (or says how many approvals are missing), `active` prints what
 * gateways are told, `rollback` and `promote --again` go through the API, and every mistake is one line.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { getState } from '../src/client.js';
import { startInput } from '../src/audit/temporal.js';
import { ActiveVersionCache } from '../src/active/service.js';
import { activeRoutes } from '../src/api/routes/active.js';
import { buildServer, type ApiServer } from '../src/api/server.js';
import { loadApiConfig } from '../src/config/api.js';
import type { MlflowClient } from '../src/mlflow/client.js';
import { ALIAS, TAG } from '../src/mlflow/tags.js';
import { createLogger } from '../src/observability/log.js';
import { parsePolicy } from '../src/policy/load.js';
import { PROJECT_ROOT } from '../src/stack/embedded.js';
import { lifecycleWorkflowId, type LifecycleState } from '../src/workflows/definitions.js';
import { startLifecycle, testApiEnv } from './support/identity.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';
import { registerTrainedVersion, testMlflow } from './support/fixtures.js';
import { eventually, startTestWorker, type RunningWorker } from './support/worker.js';

const TOKENS = { alice: 'tok-clif-alice-0123456789', bob: 'tok-clif-bob-0123456789', dana: 'tok-clif-dana-0123456789' };
const CLI = join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

describe('modelgate CLI: approve waits, active, rollback, promote --again', () => {
  let env: TestWorkflowEnvironment;
  let mlflow: MlflowClient;
  let worker: RunningWorker;
  /** Starts on the worker's queue; serves the active-version endpoint. */
  let live: { app: ApiServer; url: string };
  /** Starts on a queue no worker polls: a started run keeps its input as written. */
  let parked: { app: ApiServer; url: string };
  const parkedQueue = unique('cli-parked');
  const tokenFiles: Record<string, string> = {};

  before(async () => {
    env = await connectTestEnv();
    mlflow = testMlflow(testStack().mlflowUri);
    const set = parsePolicy(
      `defaults:
  evaluation: { thresholds: ["accuracy >= 0.5"] }
  approval: { approvers: [alice, bob], fourEyes: true, quorum: 1, expiresAfter: 1h }
  deployment: { mode: registry }
`,
      'cli-front.yaml',
    );
    const policyFor = (m: string) => {
      const p = { ...set.policyFor(m), model: m };
      return m.startsWith('q2-') ? { ...p, approval: { ...p.approval, quorum: 2 } } : p;
    };
    worker = await startTestWorker(env, { mlflow, policies: { policyFor } });
    const config = loadApiConfig(testApiEnv({ MODELGATE_API_TOKENS: Object.entries(TOKENS).map(([who, t]) => `${t}=${who}`).join(',') }));
    const serve = async (taskQueue: string, withActive: boolean) => {
      const cache = new ActiveVersionCache(mlflow, { ttlMs: 0, staleWhileRevalidateMs: 0 });
      const app = buildServer({
        client: env.client, config, logger: createLogger('silent'), registry: mlflow, taskQueue,
        ...(withActive ? { plugins: [activeRoutes(cache)] } : {}),
      });
      await app.listen({ host: '127.0.0.1', port: 0 });
      return { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` };
    };
    live = await serve(worker.taskQueue, true);
    parked = await serve(parkedQueue, false);
    const dir = mkdtempSync(join(tmpdir(), 'modelgate-cli-front-'));
    for (const [who, t] of Object.entries(TOKENS)) {
      tokenFiles[who] = join(dir, who);
      writeFileSync(tokenFiles[who], `${t}\n`, { mode: 0o600 });
    }
  });

  after(async () => {
    await live?.app.close();
    await parked?.app.close();
    await worker?.stop();
    await mlflow?.close();
    await env?.teardown();
  });

  function cli(args: string[], who: string | undefined, api = live.url): Promise<Ran> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [CLI, ...args],
        {
          env: {
            ...process.env,
            TEMPORAL_ADDRESS: testStack().temporalAddress,
            MLFLOW_TRACKING_URI: testStack().mlflowUri,
            MODELGATE_TASK_QUEUE: worker.taskQueue,
            MODELGATE_API_URL: api,
            ...(who ? { MODELGATE_TOKEN_FILE: tokenFiles[who] } : {}),
          },
          timeout: 120_000,
        },
        (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
      );
    });
  }

  function oneLineError(r: Ran, pattern: RegExp): void {
    assert.notEqual(r.code, 0, r.stdout);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
    assert.match(lines[0], pattern);
  }

  async function awaitingApproval(model: string): Promise<number> {
    const { version } = await registerTrainedVersion(mlflow, model, { user: 'dana' });
    await startLifecycle(env.client, model, version, { source: 'test' }, worker.taskQueue);
    await eventually(`${model} v${version} awaiting approval`, async () => ((await getState(env.client, model, version)).phase === 'awaiting_approval' ? true : undefined), 60_000);
    return version;
  }

  it('when a version is approved, then approve waits with progress lines until it is in Production, and active names it', async () => {
    const model = unique('clif-wait');
    const version = await awaitingApproval(model);
    const r = await cli(['approve', model, String(version), '--comment', 'ship it'], 'alice');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^${model} v${version}: stage Production, production`));
    assert.match(r.stderr, /^ {2}… .*deploying/m);
    assert.match(r.stderr, new RegExp(`${model} v${version} is in Production\\n$`));

    const shown = await cli(['active', model], undefined);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, new RegExp(`^${model}: version ${version} is active\\n`));
    assert.match(shown.stdout, /approved by\s+alice/);
    const json = await cli(['active', model, '--json'], undefined);
    assert.equal((JSON.parse(json.stdout) as { version: number }).version, version);
    oneLineError(await cli(['active', unique('clif-none')], undefined), /has no Production version/);
    oneLineError(await cli(['active', model], undefined, parked.url), /does not serve the active-version endpoint/);
  });

  it('when the quorum needs two, then the first approve returns saying one more is needed, and --no-wait returns the recorded state', async () => {
    const model = unique('q2-clif');
    const version = await awaitingApproval(model);
    const first = await cli(['approve', model, String(version)], 'alice');
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, new RegExp(`${model} v${version} awaits 1 more approval\\(s\\)\\n$`));
    const second = await cli(['approve', model, String(version), '--no-wait', '--json'], 'bob');
    assert.equal(second.code, 0, second.stderr);
    const s = JSON.parse(second.stdout) as LifecycleState;
    assert.deepEqual(s.approvals.map((a) => a.by), ['alice', 'bob']);
    assert.notEqual(s.phase, 'awaiting_approval');
    await eventually('in Production', async () => ((await getState(env.client, model, version)).phase === 'production' ? true : undefined), 60_000);
  });

  it('when rollback is run, then it goes through the API as the token\'s identity, and mistakes are one line', async () => {
    const model = unique('clif-rb');
    const a = await registerTrainedVersion(mlflow, model);
    const b = await registerTrainedVersion(mlflow, model);
    const never = await registerTrainedVersion(mlflow, model);
    await mlflow.setVersionTag(model, a.version, TAG.promotedAt, '2026-01-01T00:00:00.000Z');
    await mlflow.setVersionTag(model, b.version, TAG.promotedAt, '2026-01-02T00:00:00.000Z');
    await mlflow.setVersionTag(model, b.version, TAG.previousVersion, String(a.version));
    await mlflow.setAlias(model, ALIAS.production, b.version);

    oneLineError(await cli(['rollback', model], 'alice', parked.url), /rollback needs --reason <text>/);
    oneLineError(await cli(['rollback', model, '--reason', 'x', '--to', String(never.version)], 'alice', parked.url), /was never in Production/);
    oneLineError(await cli(['rollback', model, '--reason', 'x', '--to', String(b.version)], 'alice', parked.url), /is the version serving now/);
    oneLineError(await cli(['rollback', model, '--reason', 'x', '--to', 'v1'], 'alice', parked.url), /--to <version>.*expected a positive integer/);

    const r = await cli(['rollback', model, '--reason', 'latency incident', '--no-wait', '--json'], 'alice', parked.url);
    assert.equal(r.code, 0, r.stderr);
    const answer = JSON.parse(r.stdout) as { version: number; from: number; started: boolean; runId: string };
    assert.deepEqual([answer.version, answer.from, answer.started], [a.version, b.version, true]);
    const input = await startInput(env.client, lifecycleWorkflowId(model, a.version), answer.runId);
    assert.deepEqual(input?.request, { kind: 'rollback', reason: 'latency incident' });
    assert.equal(input?.trigger.source, 'cli');
    assert.match(input.trigger.attestation!.payload, /"kind":"rollback".*"identity":"alice"/);
    await env.client.workflow.getHandle(lifecycleWorkflowId(model, a.version)).terminate('test done');
  });

  it('when promote --again is run on an ended version, then a new run starts with the reason; without one it is refused in one line', async () => {
    const model = unique('clif-again');
    const { version } = await registerTrainedVersion(mlflow, model);
    assert.equal((await cli(['promote', model, String(version), '--no-wait'], 'dana', parked.url)).code, 0);
    const handle = env.client.workflow.getHandle(lifecycleWorkflowId(model, version));
    await handle.terminate('ended for the test');
    oneLineError(await cli(['promote', model, String(version), '--again', '--no-wait'], 'dana', parked.url), /needs a reason/);
    oneLineError(await cli(['promote', model, String(version), '--reason', 'x', '--no-wait'], 'dana', parked.url), /--reason goes with --again/);
    const r = await cli(['promote', model, String(version), '--again', '--reason', 'data fixed', '--no-wait', '--json'], 'dana', parked.url);
    assert.equal(r.code, 0, r.stderr);
    const started = JSON.parse(r.stdout) as { started: boolean; runId: string };
    assert.equal(started.started, true);
    assert.deepEqual((await startInput(env.client, handle.workflowId, started.runId))?.request, { kind: 'again', reason: 'data fixed' });
    await handle.terminate('test done');
  });
});
