/**
 * Several API replicas: every one of them serves a Production change at once, not after its cache TTL. The
 * worker's invalidation client calls every replica (a list, or every address DNS gives for a headless Service),
 * in parallel and each bounded, so one dead or hung replica never keeps the others stale.
 * Part 1 drives the client against local HTTP servers with an injected resolver; part 2 runs three real API
 * processes (`node dist/src/api/main.js`, TTL ten minutes) and a real worker process and promotes through them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import type { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createInvalidationClient } from '../src/active/invalidation-client.js';
import { createCacheActivities, INVALIDATION_INCOMPLETE } from '../src/activities/cache.js';
import { loadActiveConfig } from '../src/config/active.js';
import { getState } from '../src/client.js';
import { PROJECT_ROOT } from '../src/stack/embedded.js';
import { freePort } from '../src/stack/processes.js';
import { lifecycleWorkflowId, type LifecycleState } from '../src/workflows/definitions.js';
import type { MlflowClient } from '../src/mlflow/client.js';
import { approve, startLifecycle } from './support/identity.js';
import { registerTrainedVersion, testMlflow } from './support/fixtures.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';
import { eventually } from './support/wait.js';
import { spawnWorkerProcess, type WorkerProcess } from './support/worker-process.js';

const TOKEN = 'fanout-internal-token-0123456789';

interface Replica {
  url: string;
  calls: { path: string; auth?: string; host?: string }[];
  close(): Promise<void>;
}

/** An HTTP server standing in for one API replica's invalidation route; `answer` decides what it does. */
async function replica(answer: (res: ServerResponse) => void = (res) => res.end('{}')): Promise<Replica> {
  const calls: Replica['calls'] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    calls.push({ path: req.url ?? '', auth: req.headers.authorization, host: req.headers.host });
    answer(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('the invalidation fan-out client', () => {
  const open: Replica[] = [];
  after(async () => {
    for (const r of open) await r.close();
  });
  const up = async (answer?: (res: ServerResponse) => void) => {
    const r = await replica(answer);
    open.push(r);
    return r;
  };

  it('when the URL list names three replicas, then each gets the call with the bearer token', async () => {
    const rs = [await up(), await up(), await up()];
    const acts = createCacheActivities({ invalidator: createInvalidationClient({ urls: rs.map((r) => r.url), token: TOKEN }) });
    assert.deepEqual(await acts.invalidateActiveVersion({ model: 'fraud/a b' }), { local: false, remote: 'ok', targets: 3, acknowledged: 3 });
    for (const r of rs) assert.deepEqual(r.calls.map((c) => [c.path, c.auth]), [['/internal/models/fraud%2Fa%20b/invalidate', `Bearer ${TOKEN}`]]);
  });

  it('when DNS fan-out is on, then the host is resolved on every call and every address gets the call with the configured Host', async () => {
    const a = await up();
    const port = new URL(a.url).port;
    // Two "pods" of a headless Service on one port are two addresses; on loopback, two addresses of 127/8.
    const bOnOtherAddress = await replicaOn('127.0.0.2', Number(port)).catch(() => undefined);
    if (bOnOtherAddress) open.push(bOnOtherAddress);
    let answers: string[] = ['127.0.0.1'];
    const asked: string[] = [];
    const client = createInvalidationClient({
      urls: [`http://modelgate-api-pods:${port}`],
      token: TOKEN,
      dns: true,
      resolver: (host) => (asked.push(host), Promise.resolve(answers)),
    });
    const acts = createCacheActivities({ invalidator: client });
    assert.equal((await acts.invalidateActiveVersion({ model: 'm1' })).targets, 1);
    assert.equal(a.calls.at(-1)?.host, `modelgate-api-pods:${port}`, 'Host is the configured name, not the address');
    // A replica added since: the next change resolves again and reaches it too.
    answers = bOnOtherAddress ? ['127.0.0.1', '127.0.0.2', '127.0.0.1'] : ['127.0.0.1'];
    const second = await acts.invalidateActiveVersion({ model: 'm2' });
    assert.equal(second.remote, 'ok');
    assert.equal(second.targets, bOnOtherAddress ? 2 : 1, 'duplicate addresses are called once');
    if (bOnOtherAddress) assert.equal(bOnOtherAddress.calls.length, 1);
    assert.deepEqual(asked, ['modelgate-api-pods', 'modelgate-api-pods'], 'resolved on every change, never cached');
    await client.close();
  });

  it('when one replica refuses the connection (not running), then the others are told and the activity does not retry', async () => {
    const rs = [await up(), await up()];
    const deadPort = await freePort();
    const r = await createCacheActivities({
      invalidator: createInvalidationClient({ urls: [rs[0].url, `http://127.0.0.1:${deadPort}`, rs[1].url], token: TOKEN }),
    }).invalidateActiveVersion({ model: 'm' });
    assert.equal(r.remote, 'partial');
    assert.equal(r.acknowledged, 2);
    assert.match(r.detail!, new RegExp(`127\\.0\\.0\\.1:${deadPort} refused \\(ECONNREFUSED\\)`));
    for (const x of rs) assert.equal(x.calls.length, 1);
  });

  it('when one replica hangs, then the others are told within the timeout and the activity fails retryably naming the hung one', async () => {
    const fast = [await up(), await up()];
    const hung = await up(() => undefined); // accepts, never answers
    const client = createInvalidationClient({ urls: [hung.url, ...fast.map((r) => r.url)], token: TOKEN, timeoutMs: 300, attempts: 2 });
    const acts = createCacheActivities({ invalidator: client });
    const err = await acts.invalidateActiveVersion({ model: 'm' }).then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e as { type?: string; nonRetryable?: boolean; message: string },
    );
    assert.equal(err.type, INVALIDATION_INCOMPLETE);
    assert.equal(err.nonRetryable, false, 'Temporal retries it (bounded by the cache activity policy)');
    assert.match(err.message, /2\/3 replicas acknowledged/);
    assert.match(err.message, new RegExp(`${new URL(hung.url).host} timeout`));
    assert.ok(!err.message.includes(TOKEN), 'no token in the failure');
    for (const x of fast) assert.equal(x.calls.length, 1, 'the hung replica did not hold the others back');
    assert.equal(hung.calls.length, 2, 'the hung one was tried twice');
    await client.close();
  });

  it('when a replica answers 401 (wrong token), then the activity returns failed without retrying and without the token in its detail', async () => {
    const r = await up((res) => ((res.statusCode = 401), res.end('{}')));
    const result = await createCacheActivities({ invalidator: createInvalidationClient({ urls: [r.url], token: TOKEN }) }).invalidateActiveVersion({ model: 'm' });
    assert.deepEqual(result, { local: false, remote: 'failed', targets: 1, acknowledged: 0, detail: `${new URL(r.url).host} rejected (HTTP 401)` });
    assert.equal(r.calls.length, 1, '4xx is not repeated');
  });

  it('when the headless name does not resolve, then the activity fails retryably (every replica may be stale)', async () => {
    const acts = createCacheActivities({
      invalidator: createInvalidationClient({
        urls: ['http://modelgate-api-pods:8080'],
        dns: true,
        resolver: () => Promise.reject(Object.assign(new Error('queryA ENOTFOUND'), { code: 'ENOTFOUND' })),
      }),
    });
    await assert.rejects(acts.invalidateActiveVersion({ model: 'm' }), (e: { type?: string; message: string }) => {
      assert.equal(e.type, INVALIDATION_INCOMPLETE);
      assert.match(e.message, /modelgate-api-pods:8080 unresolved \(ENOTFOUND\)/);
      return true;
    });
  });

  it('when MODELGATE_INVALIDATE_URL is a list, with DNS or with a bad entry, then the config parses it or names the key and the reason', () => {
    const base = { MODELGATE_INTERNAL_TOKEN: TOKEN };
    assert.deepEqual(loadActiveConfig({ ...base, MODELGATE_INVALIDATE_URL: 'http://a:1/, http://b:2' }).invalidateUrls, ['http://a:1', 'http://b:2']);
    assert.equal(loadActiveConfig({ ...base, MODELGATE_INVALIDATE_URL: 'http://a:1', MODELGATE_INVALIDATE_DNS: 'true' }).invalidateDns, true);
    assert.deepEqual(loadActiveConfig(base).invalidateUrls, []);
    assert.throws(() => loadActiveConfig({ ...base, MODELGATE_INVALIDATE_URL: 'http://a:1,ftp://b' }), /MODELGATE_INVALIDATE_URL: must be http\(s\)/);
    assert.throws(() => loadActiveConfig({ ...base, MODELGATE_INVALIDATE_URL: 'http://a:1,nope' }), /MODELGATE_INVALIDATE_URL: not a URL/);
    assert.throws(
      () => loadActiveConfig({ ...base, MODELGATE_INVALIDATE_URL: 'http://user:s3cret@a:1' }),
      (e: Error) => /MODELGATE_INVALIDATE_URL: must not carry credentials/.test(e.message) && !e.message.includes('s3cret'),
    );
    assert.throws(() => loadActiveConfig({ ...base, MODELGATE_INVALIDATE_URL: 'https://a:1', MODELGATE_INVALIDATE_DNS: 'true' }), /MODELGATE_INVALIDATE_DNS: needs http URLs/);
    assert.throws(() => loadActiveConfig({ ...base, MODELGATE_INVALIDATE_DNS: 'yes' }), /MODELGATE_INVALIDATE_DNS/);
  });
});

/** A replica on another loopback address (Linux routes all of 127/8 to lo); undefined where that is not possible. */
async function replicaOn(host: string, port: number): Promise<Replica> {
  const calls: Replica['calls'] = [];
  const server = createServer((req, res) => {
    calls.push({ path: req.url ?? '', auth: req.headers.authorization, host: req.headers.host });
    res.end('{}');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return {
    url: `http://${host}:${port}`,
    calls,
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

const POLICY = `
defaults:
  evaluation: { thresholds: ["accuracy >= 0.9"], requiredTags: [], noRegression: [] }
  approval: { approvers: [alice, bob], fourEyes: true, quorum: 1, expiresAfter: 1h }
  deployment: { mode: registry }
`;

describe('three API processes and a worker process', () => {
  let env: TestWorkflowEnvironment;
  let client: Client;
  let mlflow: MlflowClient;
  let policyFile: string;
  const apis = new Map<number, ChildProcess>();
  let worker: WorkerProcess | undefined;

  before(async () => {
    env = await connectTestEnv();
    client = env.client;
    mlflow = testMlflow(testStack().mlflowUri);
    policyFile = join(testStack().dataDir, `${unique('fanout-policy')}.yaml`);
    writeFileSync(policyFile, POLICY);
  });

  after(async () => {
    for (const c of apis.values()) c.kill('SIGKILL');
    await worker?.kill();
    await mlflow?.close();
    await env?.teardown();
  });

  function startApiProcess(port: number): ChildProcess {
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'src', 'api', 'main.js')], {
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: testStack().temporalAddress,
        MLFLOW_TRACKING_URI: testStack().mlflowUri,
        MODELGATE_POLICY_FILE: policyFile,
        MODELGATE_API_PORT: String(port),
        MODELGATE_INTERNAL_TOKEN: TOKEN,
        // Ten minutes: only the invalidation can make a replica fresh within this test.
        MODELGATE_ACTIVE_TTL_MS: '600000',
        MODELGATE_ACTIVE_STALE_WHILE_REVALIDATE_MS: '0',
        MODELGATE_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    apis.set(port, child);
    return child;
  }

  const served = async (port: number, model: string): Promise<number | null | undefined> => {
    try {
      const res = await request(`http://127.0.0.1:${port}/v1/models/${encodeURIComponent(model)}/active`);
      const body = (await res.body.json()) as { version?: number };
      return res.statusCode === 200 ? body.version : res.statusCode === 404 ? null : undefined;
    } catch {
      return undefined; // not listening (yet)
    }
  };
  const serves = (port: number, model: string, want: number | null, timeoutMs = 60_000) =>
    eventually(`replica :${port} serves ${model} ${want === null ? 'no version' : `v${want}`}`, async () => ((await served(port, model)) === want ? true : undefined), timeoutMs);
  const phaseIs = (model: string, version: number, phase: LifecycleState['phase']) =>
    eventually(`${model} v${version} ${phase}`, async () => ((await getState(client, model, version)).phase === phase ? true : undefined), 120_000);

  async function promote(model: string, version: number, taskQueue: string, by: 'alice' | 'bob'): Promise<void> {
    await startLifecycle(client, model, version, { source: 'test' }, taskQueue);
    await phaseIs(model, version, 'awaiting_approval');
    await approve(client, model, version, { by });
    await phaseIs(model, version, 'production');
  }

  it('when a version is promoted, then every replica serves it long before the TTL; with one replica down the others still do, and it serves fresh on return', async () => {
    const model = unique('fanout');
    const taskQueue = unique('fanout-q');
    const ports = [await freePort(), await freePort(), await freePort()];
    for (const p of ports) startApiProcess(p);
    // Each replica caches "no Production version" for the (ten-minute) TTL.
    await mlflow.createRegisteredModel(model);
    for (const p of ports) await serves(p, model, null);
    worker = spawnWorkerProcess({
      temporalAddress: testStack().temporalAddress,
      mlflowUri: testStack().mlflowUri,
      policyFile,
      taskQueue,
      env: { MODELGATE_INVALIDATE_URL: ports.map((p) => `http://127.0.0.1:${p}`).join(','), MODELGATE_INTERNAL_TOKEN: TOKEN },
    });

    const v1 = await registerTrainedVersion(mlflow, model);
    await promote(model, v1.version, taskQueue, 'alice');
    for (const p of ports) await serves(p, model, v1.version);

    // One replica dies; the next change still reaches the other two, and the lifecycle is not held up.
    const down = ports[2];
    const gone = apis.get(down)!;
    await new Promise<void>((resolve) => (gone.once('exit', () => resolve()), gone.kill('SIGKILL')));
    const v2 = await registerTrainedVersion(mlflow, model, { metrics: { accuracy: 0.95 } });
    await promote(model, v2.version, taskQueue, 'bob');
    for (const p of ports.slice(0, 2)) await serves(p, model, v2.version);
    // Back on the same port it starts with an empty cache and reads MLflow: the new version, not the old.
    startApiProcess(down);
    await serves(down, model, v2.version);

    const results = await invalidationResults(model, v2.version);
    assert.ok(results.some((r) => r.remote === 'partial' && r.acknowledged === 2 && r.targets === 3), JSON.stringify(results));
    assert.ok(!worker.output().includes(TOKEN), 'the token never reaches the worker log');
  });

  /** The invalidateActiveVersion results recorded in the lifecycle's history. */
  async function invalidationResults(model: string, version: number): Promise<{ remote: string; targets?: number; acknowledged?: number }[]> {
    const history = await client.workflow.getHandle(lifecycleWorkflowId(model, version)).fetchHistory();
    const scheduled = new Map<string, string>();
    const out: { remote: string; targets?: number; acknowledged?: number }[] = [];
    for (const e of history.events ?? []) {
      const s = e.activityTaskScheduledEventAttributes;
      if (s) scheduled.set(String(e.eventId), s.activityType?.name ?? '');
      const c = e.activityTaskCompletedEventAttributes;
      if (c && scheduled.get(String(c.scheduledEventId)) === 'invalidateActiveVersion') {
        const payload = c.result?.payloads?.[0]?.data;
        if (payload) out.push(JSON.parse(Buffer.from(payload).toString('utf8')) as { remote: string });
      }
    }
    return out;
  }
});
