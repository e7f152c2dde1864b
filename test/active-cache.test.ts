/**
 * The active-version endpoint's cache against a local HTTP double of MLflow's REST contract (the endpoints the
 * service reads, with MLflow's wire shapes and error bodies), through the real MlflowClient and a real fastify
 * server on loopback. The double can hold answers and be stopped, which the real server cannot do on cue.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { Pool, request } from 'undici';
import { ActiveVersionCache } from '../src/active/service.js';
import type { ActiveVersion } from '../src/active/types.js';
import { activeRoutes } from '../src/api/routes/active.js';
import { createCacheActivities } from '../src/activities/cache.js';
import { MlflowClient } from '../src/mlflow/client.js';
import { metricsRegistry } from '../src/observability/metrics.js';
import { unique } from './support/stack.js';
import { until } from './support/wait.js';

const API = '/api/2.0/mlflow';
const TOKEN = 'test-internal-token-0123456789';

interface WireVersion {
  name: string;
  version: string;
  creation_timestamp: number;
  current_stage: string;
  source: string;
  run_id: string;
  status: 'READY';
  tags: Array<{ key: string; value: string }>;
  aliases: string[];
}

/** MLflow's REST contract for the three reads of the service; answers are computed when the request arrives. */
class MlflowDouble {
  server: Server = createServer((req, res) => this.#handle(req, res));
  port = 0;
  readonly aliases = new Map<string, Map<string, number>>();
  readonly versions = new Map<string, WireVersion>();
  readonly runs = new Map<string, { model: string; metrics: Record<string, number> }>();
  /** `${endpoint} ${model}` → calls. */
  readonly calls = new Map<string, number>();
  /** While set, alias answers are kept here (already computed) until released. */
  holdAlias = false;
  readonly held: Array<{ model: string; send: () => void }> = [];

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Stop listening and drop every connection: clients get ECONNREFUSED / socket errors, as with a dead MLflow. */
  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
    this.server = createServer((req, res) => this.#handle(req, res));
  }

  count(endpoint: string, model: string): number {
    return this.calls.get(`${endpoint} ${model}`) ?? 0;
  }

  addVersion(model: string, version: number, opts: { metrics?: Record<string, number>; tags?: Record<string, string> } = {}): void {
    if (!this.aliases.has(model)) this.aliases.set(model, new Map());
    const runId = `run${model.replace(/[^a-z0-9]/gi, '')}v${version}`;
    this.runs.set(runId, { model, metrics: opts.metrics ?? { accuracy: 0.9 } });
    this.versions.set(`${model}/${version}`, {
      name: model,
      version: String(version),
      creation_timestamp: 1_700_000_000_000 + version,
      current_stage: 'Production',
      source: `models:/m-${runId}`,
      run_id: runId,
      status: 'READY',
      tags: Object.entries(opts.tags ?? {}).map(([key, value]) => ({ key, value })),
      aliases: [],
    });
  }

  setAlias(model: string, alias: string, version: number): void {
    const m = this.aliases.get(model)!;
    for (const [a, v] of m) if (a === alias) this.versions.get(`${model}/${v}`)!.aliases = this.versions.get(`${model}/${v}`)!.aliases.filter((x) => x !== alias);
    m.set(alias, version);
    this.versions.get(`${model}/${version}`)!.aliases.push(alias);
  }

  releaseHeld(which: 'first' | 'last' | 'all' = 'all'): void {
    if (which === 'all') for (const h of this.held.splice(0)) h.send();
    else (which === 'first' ? this.held.shift() : this.held.pop())?.send();
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url);
    const endpoint = url.pathname.slice(API.length + 1);
    const json = (status: number, body: unknown) => () => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const notFound = (message: string) => json(404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message });
    const tally = (model: string) => this.calls.set(`${endpoint} ${model}`, this.count(endpoint, model) + 1);
    if (req.method !== 'GET') return json(405, { error_code: 'BAD_REQUEST', message: 'GET only here' })();
    if (endpoint === 'registered-models/alias') {
      const name = url.searchParams.get('name') ?? '';
      const alias = url.searchParams.get('alias') ?? '';
      tally(name);
      const m = this.aliases.get(name);
      const v = m?.get(alias);
      const answer = !m
        ? notFound(`Registered Model with name=${name} not found`)
        : v === undefined
          ? json(400, { error_code: 'INVALID_PARAMETER_VALUE', message: `Registered model alias ${alias} not found.` })
          : json(200, { model_version: structuredClone(this.versions.get(`${name}/${v}`)) });
      if (this.holdAlias) this.held.push({ model: name, send: answer });
      else answer();
      return;
    }
    if (endpoint === 'runs/get') {
      const id = url.searchParams.get('run_id') ?? '';
      const run = this.runs.get(id);
      tally(run?.model ?? id);
      if (!run) return notFound(`Run '${id}' not found`)();
      return json(200, {
        run: {
          info: { run_id: id, run_uuid: id, experiment_id: '1', status: 'FINISHED', start_time: 1_700_000_000_000, artifact_uri: `file:///mlruns/1/${id}/artifacts` },
          data: { metrics: Object.entries(run.metrics).map(([key, value]) => ({ key, value, timestamp: 1, step: 0 })), params: [], tags: [] },
        },
      })();
    }
    if (endpoint === 'model-versions/get-download-uri') {
      const name = url.searchParams.get('name') ?? '';
      tally(name);
      const v = this.versions.get(`${name}/${url.searchParams.get('version')}`);
      if (!v) return notFound(`Model Version (name=${name}) not found`)();
      return json(200, { artifact_uri: `file:///mlartifacts/${name}/v${v.version}` })();
    }
    return notFound(`no endpoint ${endpoint}`)();
  }
}


describe('active-version cache (MLflow double)', () => {
  const double = new MlflowDouble();
  let mlflow: MlflowClient;
  let clock = Date.now();
  let cache: ActiveVersionCache;
  let app: FastifyInstance;
  let base: string;
  let arrivals = 0;
  const aliasCalls = new Map<string, number>();
  const TTL = 60_000;
  const SWR = 30_000;

  before(async () => {
    await double.start();
    mlflow = new MlflowClient({ trackingUri: double.url, timeoutMs: 2_000 });
    // Counts calls as they are made (the double counts them only when they arrive).
    const source = {
      getVersionByAlias: (m: string, a: string) => {
        aliasCalls.set(m, (aliasCalls.get(m) ?? 0) + 1);
        return mlflow.getVersionByAlias(m, a);
      },
      getRun: (id: string) => mlflow.getRun(id),
      getDownloadUri: (m: string, v: number) => mlflow.getDownloadUri(m, v),
    };
    cache = new ActiveVersionCache(source, { ttlMs: TTL, staleWhileRevalidateMs: SWR, retryAfterErrorMs: 1_000, maxWaitMs: 2_000, now: () => clock });
    app = Fastify({ logger: false });
    app.addHook('onRequest', (_req, _reply, done) => {
      arrivals++;
      done();
    });
    await app.register(activeRoutes(cache, { invalidateToken: TOKEN }));
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });

  after(async () => {
    await app.close();
    await mlflow.close();
    await double.stop();
  });

  async function get(model: string, headers: Record<string, string> = {}) {
    const res = await request(`${base}/v1/models/${encodeURIComponent(model)}/active`, { headers });
    const text = await res.body.text();
    return { status: res.statusCode, etag: res.headers.etag as string | undefined, text, body: text ? (JSON.parse(text) as ActiveVersion & { code?: string }) : undefined };
  }

  it('when 1,000 concurrent cold requests arrive, then MLflow is read exactly once per kind and all get the same answer', async () => {
    const model = unique('cold');
    double.addVersion(model, 3, { metrics: { accuracy: 0.93, f1: 0.9 } });
    double.setAlias(model, 'production', 3);
    double.holdAlias = true;
    const start = arrivals;
    const pool = new Pool(base, { connections: 1000 });
    try {
      const all = Array.from({ length: 1000 }, () =>
        pool.request({ path: `/v1/models/${model}/active`, method: 'GET' }).then(async (r) => ({ status: r.statusCode, etag: r.headers.etag, text: await r.body.text() })),
      );
      // Hold MLflow's answer until every request is inside the server: they are all cold at once.
      await until('1,000 requests inside the API', () => arrivals - start === 1000, 30_000);
      assert.equal(double.held.length, 1, 'one alias read for 1,000 requests');
      double.holdAlias = false;
      double.releaseHeld();
      const results = await Promise.all(all);
      assert.ok(results.every((r) => r.status === 200));
      assert.equal(new Set(results.map((r) => r.etag)).size, 1);
      assert.equal(new Set(results.map((r) => r.text)).size, 1);
      assert.equal(double.count('registered-models/alias', model), 1);
      assert.equal(double.count('runs/get', model), 1);
      assert.equal(double.count('model-versions/get-download-uri', model), 1);
      const body = JSON.parse(results[0].text) as ActiveVersion;
      assert.equal(body.version, 3);
      assert.deepEqual(body.metrics, { accuracy: 0.93, f1: 0.9 });
      assert.equal(body.storageUri, `file:///mlartifacts/${model}/v3`);
      assert.equal(body.stale, undefined);
    } finally {
      double.holdAlias = false;
      double.releaseHeld();
      await pool.close();
    }
  });

  it('when If-None-Match carries the current ETag, then 304 without a body; any other tag gets 200', async () => {
    const model = unique('etag');
    double.addVersion(model, 1);
    double.setAlias(model, 'production', 1);
    const first = await get(model);
    assert.equal(first.status, 200);
    assert.match(first.etag ?? '', /^"[A-Za-z0-9_-]+"$/);
    const again = await get(model, { 'if-none-match': first.etag! });
    assert.equal(again.status, 304);
    assert.equal(again.text, '');
    assert.equal((await get(model, { 'if-none-match': `W/${first.etag!}, "other"` })).status, 304);
    const other = await get(model, { 'if-none-match': '"something-else"' });
    assert.equal(other.status, 200);
    assert.equal(other.text, first.text);
  });

  it('when MLflow is stopped, then a seen model gets last-known-good with stale: true and a never-seen one 503', async () => {
    const model = unique('lkg');
    double.addVersion(model, 2, { metrics: { accuracy: 0.95 } });
    double.setAlias(model, 'production', 2);
    const fresh = await get(model);
    assert.equal(fresh.status, 200);
    await double.stop();
    try {
      clock += TTL + SWR + 1; // expired beyond stale-while-revalidate: the cache must try MLflow
      const stale = await get(model);
      assert.equal(stale.status, 200);
      assert.equal(stale.body?.stale, true);
      assert.equal(stale.body?.version, 2);
      assert.deepEqual(stale.body?.metrics, { accuracy: 0.95 });
      assert.equal(stale.etag, fresh.etag, 'the ETag ignores the stale marker');
      assert.equal((await get(model, { 'if-none-match': fresh.etag! })).status, 304);
      // Within retryAfterError no new attempt is made, still stale and fast.
      assert.equal((await get(model)).body?.stale, true);
      const never = await get(unique('never-seen'));
      assert.equal(never.status, 503);
      assert.equal(never.body?.code, 'unavailable');
    } finally {
      await double.start();
    }
    clock += 1_001; // past retryAfterError: the next request reads MLflow again
    const back = await get(model);
    assert.equal(back.status, 200);
    assert.equal(back.body?.stale, undefined);
  });

  it('when MLflow says the model has no production alias (or no such model), then 404 no_production_version', async () => {
    const model = unique('none');
    double.addVersion(model, 1);
    const none = await get(model);
    assert.equal(none.status, 404);
    assert.equal(none.body?.code, 'no_production_version');
    const missing = await get(unique('no-such-model'));
    assert.equal(missing.status, 404);
    assert.equal(missing.body?.code, 'no_production_version');
  });

  it('when the alias moves and the invalidation route is called, then the next request serves the new version before the TTL', async () => {
    const model = unique('inval');
    double.addVersion(model, 1);
    double.addVersion(model, 2);
    double.setAlias(model, 'production', 1);
    assert.equal((await get(model)).body?.version, 1);
    double.setAlias(model, 'production', 2);
    assert.equal((await get(model)).body?.version, 1, 'within the TTL the cache alone does not know');
    const denied = await request(`${base}/internal/models/${model}/invalidate`, { method: 'POST', headers: { authorization: 'Bearer wrong-token-xxxxxxxxxxxx' } });
    assert.equal(denied.statusCode, 401);
    await denied.body.dump();
    const anonymous = await request(`${base}/internal/models/${model}/invalidate`, { method: 'POST' });
    assert.equal(anonymous.statusCode, 401);
    await anonymous.body.dump();
    assert.equal((await get(model)).body?.version, 1);
    // The worker's activity, as the lifecycle calls it after a Production change.
    const acts = createCacheActivities({ invalidateUrl: base, token: TOKEN });
    assert.deepEqual(await acts.invalidateActiveVersion({ model }), { local: false, remote: 'ok', targets: 1, acknowledged: 1 });
    const now = await get(model);
    assert.equal(now.body?.version, 2);
    assert.equal(double.count('registered-models/alias', model), 2);
  });

  it('when the invalidation token is wrong or the API is absent, then the activity still succeeds and says so', async () => {
    const model = unique('inval-fail');
    const wrong = await createCacheActivities({ invalidateUrl: base, token: 'not-the-token-000000000' }).invalidateActiveVersion({ model });
    assert.equal(wrong.remote, 'failed');
    assert.equal(wrong.detail, `${new URL(base).host} rejected (HTTP 401)`);
    const local: string[] = [];
    const none = await createCacheActivities({ local: { invalidate: (m) => local.push(m) } }).invalidateActiveVersion({ model });
    assert.deepEqual(none, { local: true, remote: 'skipped' });
    assert.deepEqual(local, [model]);
    const dead = await createCacheActivities({ invalidateUrl: 'http://127.0.0.1:1', token: TOKEN, timeoutMs: 500 }).invalidateActiveVersion({ model });
    assert.equal(dead.remote, 'failed');
    assert.doesNotMatch(JSON.stringify(dead), new RegExp(TOKEN));
  });

  it('when no token is configured, then the invalidation route refuses with 403', async () => {
    const bare = Fastify({ logger: false });
    await bare.register(activeRoutes(cache));
    const res = await bare.inject({ method: 'POST', url: '/internal/models/x/invalidate', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.statusCode, 403);
    assert.equal(res.json<{ code: string }>().code, 'invalidation_disabled');
    await bare.close();
  });

  it('when the TTL has passed within the stale-while-revalidate window, then the old value is served at once and one background read refreshes it', async () => {
    const model = unique('swr');
    double.addVersion(model, 1);
    double.addVersion(model, 2);
    double.setAlias(model, 'production', 1);
    assert.equal((await get(model)).body?.version, 1);
    double.setAlias(model, 'production', 2);
    clock += TTL + 1;
    double.holdAlias = true;
    try {
      const served = await get(model); // answered while MLflow's answer is held
      assert.equal(served.body?.version, 1);
      assert.equal(served.body?.stale, undefined);
      assert.equal((await get(model)).body?.version, 1);
      assert.equal(aliasCalls.get(model), 2, 'the first read and ONE background read for two requests');
      await until('the background read at MLflow', () => double.held.length === 1);
      double.holdAlias = false;
      double.releaseHeld();
      await until('the background read to land', () => cache.peek(model)?.value?.version === 2);
      assert.equal((await get(model)).body?.version, 2);
    } finally {
      double.holdAlias = false;
      double.releaseHeld();
    }
  });

  it('when an invalidation arrives while an older read is under way, then the older answer is never cached', async () => {
    const model = unique('race');
    double.addVersion(model, 1);
    double.addVersion(model, 2);
    double.setAlias(model, 'production', 1);
    assert.equal((await get(model)).body?.version, 1);
    clock += TTL + SWR + 1;
    double.holdAlias = true;
    try {
      const waiting = cache.get(model); // read #1 starts: MLflow computed "v1" and holds it
      await until('read #1 at MLflow', () => double.held.length === 1);
      double.setAlias(model, 'production', 2);
      cache.invalidate(model); // read #2 starts: "v2"
      await until('read #2 at MLflow', () => double.held.length === 2);
      double.releaseHeld('last'); // the newer answer lands first…
      await until('v2 cached', () => cache.peek(model)?.value?.version === 2);
      double.releaseHeld('first'); // …then the older one
      const old = await waiting;
      assert.equal(old.kind === 'found' && old.value.version, 1, 'the request that started before the change gets what it read');
      assert.equal(cache.peek(model)?.value?.version, 2, 'but the older answer did not overwrite the newer one');
      assert.equal((await get(model)).body?.version, 2);
    } finally {
      double.holdAlias = false;
      double.releaseHeld();
    }
  });

  it('when lookups have happened, then Prometheus counts them by result and MLflow reads by outcome', async () => {
    const value = async (name: string, label: string) => {
      const m = (await metricsRegistry.getSingleMetric(name)!.get()).values.find((v) => Object.values(v.labels).includes(label));
      return m?.value ?? 0;
    };
    const model = unique('metrics');
    double.addVersion(model, 1);
    double.setAlias(model, 'production', 1);
    const before = { hit: await value('modelgate_active_requests_total', 'hit'), miss: await value('modelgate_active_requests_total', 'miss') };
    await get(model);
    await get(model);
    assert.equal(await value('modelgate_active_requests_total', 'miss'), before.miss + 1);
    assert.equal(await value('modelgate_active_requests_total', 'hit'), before.hit + 1);
    // Earlier tests in this file stopped MLflow and served last-known-good.
    assert.ok((await value('modelgate_active_requests_total', 'stale')) > 0);
    assert.ok((await value('modelgate_active_upstream_reads_total', 'error')) > 0);
    assert.ok((await value('modelgate_active_upstream_reads_total', 'found')) > 0);
  });
});
