/**
 * Log redaction: the pure redact() walk (keys at any depth, URL userinfo, cycles, errors and other non-plain
 * values) and the real logger built by createLogger. Pure; no servers needed.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_DEPTH, REDACTED, redact } from '../src/observability/redact.js';
import { createLogger } from '../src/observability/log.js';
import { maskUrlCredentials } from '../src/util/url-credentials.js';

describe('redact', () => {
  test('when a secret-looking key sits at any depth, then its value is "[redacted]" and the rest is kept', () => {
    const out = redact({ model: 'churn', a: { b: { c: { githubToken: 'x', name: 'ok' } } }, password: { nested: 'whole value' } });
    assert.deepEqual(out, { model: 'churn', a: { b: { c: { githubToken: REDACTED, name: 'ok' } } }, password: REDACTED });
  });

  test('when keys differ in case or spelling, then every listed pattern matches and ordinary keys do not', () => {
    const secret = {
      Authorization: 1, 'Proxy-Authorization': 1, COOKIE: 1, 'Set-Cookie': 1, 'X-Api-Key': 1, API_KEY: 1, apikey: 1,
      clientSecret: 1, PASSWORD: 1, passwd: 1, refresh_token: 1, privateKey: 1, 'x-hub-signature-256': 1,
    };
    const ordinary = { model: 1, version: 1, key: 1, author: 1, cookies: 1, url: 1, by: 1 };
    const out = redact({ ...secret, ...ordinary });
    for (const k of Object.keys(secret)) assert.equal(out[k as keyof typeof out], REDACTED, k);
    for (const k of Object.keys(ordinary)) assert.equal(out[k as keyof typeof out], 1, k);
  });

  test('when values sit in arrays, then items are redacted and masked and the array stays an array', () => {
    const out = redact({ list: [{ token: 't', id: 1 }, 'https://u:p@h/x', 3, [{ apiKey: 'k' }]] });
    assert.deepEqual(out, { list: [{ token: REDACTED, id: 1 }, 'https://***@h/x', 3, [{ apiKey: REDACTED }]] });
  });

  test('when a string holds a URL with userinfo, then the userinfo is masked whole and nothing else changes', () => {
    const cases: Array<[string, string]> = [
      ['https://u:p@h/x', 'https://***@h/x'],
      ['git clone https://ghp_abc@github.com/a/b.git failed', 'git clone https://***@github.com/a/b.git failed'],
      ['https://user:p@ss@h/x', 'https://***@h/x'],
      ['ssh://git@host/serving.git', 'ssh://***@host/serving.git'],
      ['"redis://:pw@cache:6379" and bob@example.com', '"redis://***@cache:6379" and bob@example.com'],
      ['git@github.com:org/repo.git', 'git@github.com:org/repo.git'],
      ['https://h/x?mail=a@b.c', 'https://h/x?mail=a@b.c'],
    ];
    for (const [input, masked] of cases) assert.equal(redact(input), masked, input);
    assert.equal(maskUrlCredentials('https://@h/x'), 'https://@h/x');
  });

  test('when nothing needs hiding, then the very same value comes back; when something does, the input is untouched', () => {
    const clean = { a: { b: [1, 'x', { c: null }] }, url: 'https://h/x' };
    assert.equal(redact(clean), clean);
    const dirty = { keep: { same: true }, deep: { token: 't' } };
    const out = redact(dirty);
    assert.equal(dirty.deep.token, 't', 'input not modified');
    assert.equal(out.keep, dirty.keep, 'unchanged branches are shared, not copied');
  });

  test('when an object refers to itself, then the cycle becomes "[Circular]" and a repeated reference is not one', () => {
    const a: Record<string, unknown> = { token: 'x', name: 'n' };
    a.self = a;
    const out = redact(a);
    assert.deepEqual(out, { token: REDACTED, name: 'n', self: '[Circular]' });
    assert.equal(JSON.stringify(out).includes('"x"'), false);
    const shared = { password: 'p' };
    assert.deepEqual(redact({ one: shared, two: [shared] }), { one: { password: REDACTED }, two: [{ password: REDACTED }] });
  });

  test('when nesting goes past MAX_DEPTH, then the deeper part is replaced, not printed', () => {
    let v: Record<string, unknown> = { token: 'deep secret' };
    for (let i = 0; i < MAX_DEPTH + 3; i++) v = { next: v };
    const text = JSON.stringify(redact(v));
    assert.equal(text.includes('deep secret'), false);
    assert.ok(text.includes('[too deep]'));
  });

  test('when an Error is logged, then it is serialized with type, masked message and stack, and redacted fields', () => {
    const err = Object.assign(new TypeError('clone of https://u:p@h/x failed', { cause: new Error('auth for https://t@h') }), {
      code: 'E_GIT',
      headers: { authorization: 'Bearer abc' },
    });
    const out = redact({ err }).err as unknown as Record<string, unknown>;
    assert.equal(out.type, 'TypeError');
    assert.equal(out.message, 'clone of https://***@h/x failed: auth for https://***@h');
    assert.match(String(out.stack), /^TypeError: clone of https:\/\/\*\*\*@h\/x failed\n/);
    assert.equal(out.code, 'E_GIT');
    assert.deepEqual(out.headers, { authorization: REDACTED });
    assert.equal(JSON.stringify(out).includes('u:p@'), false);
    assert.equal(err.message, 'clone of https://u:p@h/x failed', 'the error itself is untouched');
  });

  test('when values are Buffers, Dates, Maps or URL objects, then they stay sane: left as they are, or a masked URL', () => {
    const buf = Buffer.from('password=x');
    const date = new Date(0);
    const map = new Map([['token', 'x']]);
    const out = redact({ buf, date, map, plainUrl: new URL('https://h/x'), credUrl: new URL('https://u:p@h/x') });
    assert.equal(out.buf, buf);
    assert.equal(out.date, date);
    assert.equal(out.map, map);
    assert.ok(out.plainUrl instanceof URL);
    assert.equal(out.credUrl, 'https://***@h/x');
    assert.equal(redact(null), null);
    assert.equal(redact(42), 42);
  });
});

describe('createLogger', () => {
  function capture() {
    const lines: string[] = [];
    return { lines, stream: { write: (line: string) => void lines.push(line) } };
  }

  test('when a nested object with headers, tokens and a credential URL is logged, then the line comes out redacted', () => {
    const { lines, stream } = capture();
    const log = createLogger('info', { component: 'test' }, stream);
    log.info({ req: { headers: { Authorization: 'Bearer abc', accept: 'json' } }, deep: { a: { githubToken: 'x' } }, url: 'https://u:p@h/x' }, 'hello');
    assert.equal(lines.length, 1);
    const line = JSON.parse(lines[0]) as Record<string, unknown>;
    assert.deepEqual(line.req, { headers: { Authorization: REDACTED, accept: 'json' } });
    assert.deepEqual(line.deep, { a: { githubToken: REDACTED } });
    assert.equal(line.url, 'https://***@h/x');
    assert.equal(line.msg, 'hello');
    assert.equal(line.component, 'test');
    assert.equal(/Bearer abc|"x"|u:p@/.test(lines[0]), false, lines[0]);
  });

  test('when a child logger binds a secret and logs an Error, then bindings, error and message are all redacted', () => {
    const { lines, stream } = capture();
    const log = createLogger('info', { dbPassword: 'pw' }, stream).child({ model: 'm' }).child({ apiToken: 'tok' });
    log.error(new Error('push to https://u:p@h/x failed'));
    const line = JSON.parse(lines[0]) as Record<string, unknown>;
    assert.equal(line.dbPassword, REDACTED);
    assert.equal(line.apiToken, REDACTED);
    assert.equal(line.model, 'm');
    assert.equal(line.msg, 'push to https://***@h/x failed');
    const err = line.err as Record<string, unknown>;
    assert.equal(err.type, 'Error');
    assert.equal(err.message, 'push to https://***@h/x failed');
    assert.equal(/"pw"|"tok"|u:p@/.test(lines[0]), false, lines[0]);
  });
});
