/**
 * ActiveVersionClient (what an inference gateway embeds) against the real active-version routes on loopback,
 * over an in-memory registry whose Production version the test moves. The API can be switched to failing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Fastify, { type FastifyInstance } from 'fastify';
import { ActiveVersionClient } from '../src/active/gateway-client.js';
import type { ActiveVersionSource } from '../src/active/read.js';
import { ActiveVersionCache } from '../src/active/service.js';
import type { ActiveVersion } from '../src/active/types.js';
import { activeRoutes } from '../src/api/routes/active.js';
import type { ModelVersion } from '../src/mlflow/types.js';
import { unique } from './support/stack.js';
import { until } from './support/wait.js';


describe('ActiveVersionClient', () => {
  const production = new Map<string, number>();
  const source: ActiveVersionSource = {
    getVersionByAlias(model) {
      const v = production.get(model);
      if (v === undefined) return Promise.resolve(null);
      return Promise.resolve({ name: model, version: v, creation_timestamp: 0, current_stage: 'Production', source: 's', run_id: `r${v}`, status: 'READY', tags: {}, aliases: ['production'] } satisfies ModelVersion);
    },
    getRun(id) {
      return Promise.resolve({ run_id: id, experiment_id: '1', status: 'FINISHED', metrics: { accuracy: 0.9 }, params: {}, tags: {} });
    },
    getDownloadUri(model, v) {
      return Promise.resolve(`file:///m/${model}/${v}`);
    },
  };
  let app: FastifyInstance;
  let base: string;
  let failing = false;
  const statuses: number[] = [];
  const clients: ActiveVersionClient[] = [];

  before(async () => {
    // TTL 0: every poll reads the registry, so a change shows at the next poll.
    const cache = new ActiveVersionCache(source, { ttlMs: 0, staleWhileRevalidateMs: 0 });
    app = Fastify({ logger: false });
    app.addHook('onRequest', async (_req, reply) => {
      if (failing) await reply.code(502).send('bad gateway');
    });
    app.addHook('onResponse', async (_req, reply) => {
      statuses.push(reply.statusCode);
    });
    await app.register(activeRoutes(cache));
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });

  after(async () => {
    for (const c of clients) c.stop();
    await app.close();
  });

  function client(model: string): ActiveVersionClient {
    const c = new ActiveVersionClient({ baseUrl: base, model, intervalMs: 20, maxBackoffMs: 400, timeoutMs: 2_000 });
    clients.push(c);
    return c;
  }

  it('when started, then the first value is there and later polls are conditional (304, no change event)', async () => {
    const model = unique('gw');
    production.set(model, 4);
    const c = client(model);
    const changes: Array<number | null> = [];
    c.on('change', (v) => changes.push(v?.version ?? null));
    const first = await c.start();
    assert.equal(first?.version, 4);
    assert.equal(c.current()?.version, 4);
    const mark = statuses.length;
    await until('three more polls', () => statuses.length >= mark + 3);
    assert.ok(statuses.slice(mark).every((s) => s === 304), `polls after the first answer 304: ${statuses.slice(mark).join(',')}`);
    assert.deepEqual(changes, [4]);
  });

  it('when the Production version changes, then `change` fires with the new and previous values', async () => {
    const model = unique('gw-change');
    production.set(model, 1);
    const c = client(model);
    await c.start();
    const seen = new Promise<[ActiveVersion | null, ActiveVersion | null | undefined]>((resolve) => c.once('change', (v, prev) => resolve([v, prev])));
    production.set(model, 2);
    const [next, prev] = await seen;
    assert.equal(next?.version, 2);
    assert.equal(prev?.version, 1);
    assert.equal(c.current()?.version, 2);
    production.delete(model);
    await until('no Production version', () => c.current() === null);
  });

  it('when the API fails, then errors are emitted, the last value is kept, polling backs off, and it recovers', async () => {
    const model = unique('gw-fail');
    production.set(model, 7);
    const c = client(model);
    await c.start();
    const errors: Error[] = [];
    c.on('error', (e) => errors.push(e));
    failing = true;
    try {
      await until('three failed polls', () => errors.length >= 3);
      assert.equal(c.current()?.version, 7, 'last value kept');
      assert.match(errors[0].message, /HTTP 502/);
      assert.ok(c.nextDelayMs() > 20, `backs off beyond the interval (next ${c.nextDelayMs()} ms)`);
      assert.ok(c.nextDelayMs() <= 400, 'never beyond maxBackoffMs');
    } finally {
      failing = false;
    }
    production.set(model, 8);
    await until('recovered', () => c.current()?.version === 8, 10_000);
    assert.equal(c.nextDelayMs(), 20);
  });

  it('when the API cannot be reached at start, then start() rejects and current() stays unknown', async () => {
    const dead = Fastify({ logger: false });
    const url = await dead.listen({ host: '127.0.0.1', port: 0 });
    await dead.close();
    const c = new ActiveVersionClient({ baseUrl: url, model: 'x', intervalMs: 50, timeoutMs: 1_000 });
    clients.push(c);
    await assert.rejects(c.start(), /ECONNREFUSED|connect/i);
    assert.equal(c.current(), undefined);
    c.stop();
  });
});
