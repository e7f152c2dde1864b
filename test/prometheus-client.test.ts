/**
 * The narrow Prometheus client and its configuration, against a local HTTP double where the real server cannot
 * misbehave on demand: 5xx, a body that is not Prometheus's, a server that never answers, a path prefix, the
 * bearer token — which is sent but never appears in a message — and MODELGATE_PROMETHEUS_* validation.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseSampleValue, PrometheusClient, PrometheusError } from '../src/prometheus/client.js';
import { loadPrometheusConfig, createPrometheusClient } from '../src/config/prometheus.js';
import { ConfigError } from '../src/config.js';

const TOKEN = 'prom-secret-token-123456';

describe('Prometheus client', () => {
  let server: Server;
  let base: string;
  let reply: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end();
  const seen: Array<{ url: string; auth?: string }> = [];

  before(async () => {
    server = createServer((req, res) => {
      seen.push({ url: req.url ?? '', auth: req.headers.authorization });
      reply(req, res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const json = (status: number, body: unknown) => (_req: IncomingMessage, res: ServerResponse) =>
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

  async function failure(client: PrometheusClient, q = 'up'): Promise<PrometheusError> {
    try {
      await client.query(q);
    } catch (err) {
      assert.ok(err instanceof PrometheusError, String(err));
      assert.equal(err.message.includes(TOKEN), false, 'token not in the message');
      assert.equal(err.message.includes('\n'), false, 'one line');
      return err;
    }
    assert.fail('expected a PrometheusError');
  }

  test('when a vector answers, then the series and values come back and the token is sent as a bearer', async () => {
    reply = json(200, { status: 'success', data: { resultType: 'vector', result: [{ metric: { version: '3' }, value: [1, '0.25'] }] } });
    const c = new PrometheusClient({ url: `${base}/prom/`, token: TOKEN });
    assert.deepEqual(await c.query('sum(x{version="3"})'), { resultType: 'vector', series: [{ labels: { version: '3' }, value: 0.25 }] });
    const last = seen.at(-1)!;
    assert.equal(last.auth, `Bearer ${TOKEN}`);
    const u = new URL(last.url, base);
    assert.equal(u.pathname, '/prom/api/v1/query', 'path prefix kept');
    assert.equal(u.searchParams.get('query'), 'sum(x{version="3"})');
    assert.match(u.searchParams.get('timeout')!, /^\d+ms$/);
  });

  test('when a scalar or special values answer, then they parse (NaN and ±Inf included)', async () => {
    reply = json(200, { status: 'success', data: { resultType: 'scalar', result: [1, 'NaN'] } });
    const r = await new PrometheusClient({ url: base }).query('x');
    assert.ok(r.resultType === 'scalar' && Number.isNaN(r.value));
    assert.equal(parseSampleValue('+Inf'), Infinity);
    assert.equal(parseSampleValue('-Inf'), -Infinity);
    assert.equal(parseSampleValue('1e-3'), 0.001);
    assert.equal(parseSampleValue('0x10'), undefined);
    assert.equal(parseSampleValue(''), undefined);
    assert.equal(parseSampleValue(3), undefined);
  });

  test('when Prometheus answers 503, then the error is kind http with the status, not the token', async () => {
    reply = json(503, { status: 'error', errorType: 'unavailable', error: `overloaded; token=${TOKEN}`.replace(TOKEN, 'x') });
    const err = await failure(new PrometheusClient({ url: base, token: TOKEN }));
    assert.equal(err.kind, 'http');
    assert.equal(err.status, 503);
    assert.match(err.message, /^Prometheus at 127\.0\.0\.1:\d+: HTTP 503: unavailable: overloaded/);
  });

  test('when Prometheus refuses the query (400 bad_data), then the error is kind query', async () => {
    reply = json(400, { status: 'error', errorType: 'bad_data', error: 'parse error: unexpected end of input\nat line 2' });
    const err = await failure(new PrometheusClient({ url: base }));
    assert.equal(err.kind, 'query');
    assert.match(err.message, /HTTP 400: bad_data: parse error: unexpected end of input at line 2$/);
  });

  test('when the body is not a Prometheus result, then the error is kind bad-response', async () => {
    reply = (_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>');
    assert.equal((await failure(new PrometheusClient({ url: base }))).kind, 'bad-response');
    reply = json(200, { status: 'success', data: { resultType: 'vector', result: [{ metric: {}, value: [1, 'lots'] }] } });
    assert.equal((await failure(new PrometheusClient({ url: base }))).kind, 'bad-response');
  });

  test('when the answer is larger than a megabyte, then it is refused without buffering it all', async () => {
    reply = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = 'x'.repeat(64 * 1024);
      for (let k = 0; k < 20; k++) res.write(chunk);
      res.end();
    };
    const err = await failure(new PrometheusClient({ url: base }));
    assert.equal(err.kind, 'bad-response');
    assert.match(err.message, /larger than 1048576 bytes/);
  });

  test('when the server never answers, then the error is kind timeout after the client timeout', async () => {
    reply = () => undefined; // holds the request open
    const err = await failure(new PrometheusClient({ url: base, timeoutMs: 300 }));
    assert.equal(err.kind, 'timeout');
    assert.match(err.message, /no answer within 300 ms$/);
  });

  test('when nothing listens, then the error is kind unreachable naming the host only', async () => {
    const err = await failure(new PrometheusClient({ url: 'http://127.0.0.1:1/', token: TOKEN }));
    assert.equal(err.kind, 'unreachable');
    assert.equal(err.message, 'Prometheus at 127.0.0.1:1: unreachable (ECONNREFUSED)');
  });

  test('when the URL carries credentials, then the client refuses it', () => {
    assert.throws(() => new PrometheusClient({ url: 'http://u:p@127.0.0.1:9090' }), /must not carry credentials/);
  });
});

describe('Prometheus configuration', () => {
  test('when nothing is set, then there is no client and the timeout default applies', () => {
    const c = loadPrometheusConfig({});
    assert.deepEqual(c, { url: undefined, token: undefined, timeoutMs: 5000 });
    assert.equal(createPrometheusClient(c), undefined);
  });

  test('when a URL and token are set, then a client is built', () => {
    const c = loadPrometheusConfig({ MODELGATE_PROMETHEUS_URL: 'https://prom.example:9090/x', MODELGATE_PROMETHEUS_TOKEN: TOKEN, MODELGATE_PROMETHEUS_TIMEOUT_MS: '2000' });
    assert.equal(c.timeoutMs, 2000);
    assert.ok(createPrometheusClient(c) instanceof PrometheusClient);
  });

  const bad: Array<[Record<string, string>, string]> = [
    [{ MODELGATE_PROMETHEUS_URL: 'not a url' }, 'MODELGATE_PROMETHEUS_URL: expected an http(s) URL such as http://prometheus:9090'],
    [{ MODELGATE_PROMETHEUS_URL: 'ftp://prom:21' }, 'MODELGATE_PROMETHEUS_URL: expected an http(s) URL (got scheme ftp)'],
    [{ MODELGATE_PROMETHEUS_URL: 'http://admin:hunter2@prom:9090' }, 'MODELGATE_PROMETHEUS_URL: must not carry credentials; set MODELGATE_PROMETHEUS_TOKEN'],
    [{ MODELGATE_PROMETHEUS_URL: 'htp:/admin:hunter2@prom' }, 'MODELGATE_PROMETHEUS_URL: expected an http(s) URL (got scheme htp)'],
    [{ MODELGATE_PROMETHEUS_URL: 'http://prom:9090/?x=1' }, 'MODELGATE_PROMETHEUS_URL: must be a base URL without ?query or #fragment'],
    [{ MODELGATE_PROMETHEUS_TOKEN: TOKEN }, 'MODELGATE_PROMETHEUS_TOKEN: set without MODELGATE_PROMETHEUS_URL'],
    [{ MODELGATE_PROMETHEUS_URL: 'http://prom:9090', MODELGATE_PROMETHEUS_TIMEOUT_MS: '50' }, 'MODELGATE_PROMETHEUS_TIMEOUT_MS: Number must be greater than or equal to 1000 (got "50")'],
  ];
  for (const [env, message] of bad) {
    test(`when ${JSON.stringify(env).slice(0, 60)}, then the start fails naming the key, never echoing a password`, () => {
      assert.throws(() => loadPrometheusConfig(env), (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.message, message);
        assert.equal(err.message.includes('hunter2'), false);
        assert.equal(err.message.includes(TOKEN), false);
        return true;
      });
    });
  }
});
