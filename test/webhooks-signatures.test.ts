/**
 * Signature checks against the senders' documented vectors (Slack, GitHub) and MLflow's own implementation,
 * the delivery-id dedupe, the bearer-token table and the API config parser. No servers needed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../src/stack/embedded.js';
import {
  githubSignature,
  mlflowSignature,
  slackSignature,
  verifyGithub,
  verifyMlflow,
  verifySlack,
} from '../src/webhooks/signatures.js';
import { DeliveryDedupe } from '../src/webhooks/dedupe.js';
import { Authenticator } from '../src/api/auth.js';
import { testApiEnv } from './support/identity.js';
import { loadApiConfig } from '../src/config/api.js';
import { ConfigError } from '../src/config.js';

// Slack's documented example (api.slack.com "Verifying requests from Slack"): a slash-command body.
const SLACK_SECRET = '8f742231b10e8888abcd99yyyzzz85a5';
const SLACK_TS = '1531420618';
const SLACK_BODY =
  'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c';
const SLACK_SIG = 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503';
const SLACK_NOW = Number(SLACK_TS) * 1000 + 10_000;

// GitHub's documented example ("Validating webhook deliveries").
const GH_SECRET = "It's a Secret to Everybody";
const GH_BODY = 'Hello, World!';
const GH_SIG = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';

describe('Slack request signing', () => {
  const headers = (sig = SLACK_SIG, ts = SLACK_TS) => ({ 'x-slack-signature': sig, 'x-slack-request-timestamp': ts });

  it("when Slack's documented example is checked, then the signature matches and the request is accepted", () => {
    assert.equal(slackSignature(SLACK_SECRET, SLACK_TS, SLACK_BODY), SLACK_SIG);
    assert.deepEqual(verifySlack(SLACK_SECRET, headers(), Buffer.from(SLACK_BODY), SLACK_NOW), { ok: true });
  });

  it('when one body byte is changed, then it is refused as bad_signature', () => {
    const v = verifySlack(SLACK_SECRET, headers(), Buffer.from(SLACK_BODY.replace('foobar', 'foobaz')), SLACK_NOW);
    assert.equal(v.ok, false);
    assert.equal(!v.ok && v.code, 'bad_signature');
  });

  it('when the timestamp is more than 300 s old (or ahead), then it is refused as stale even with a valid signature', () => {
    for (const skew of [301_000, -301_000]) {
      const v = verifySlack(SLACK_SECRET, headers(), Buffer.from(SLACK_BODY), Number(SLACK_TS) * 1000 + skew);
      assert.equal(!v.ok && v.code, 'stale_request', `skew ${skew}`);
    }
    assert.equal(verifySlack(SLACK_SECRET, headers(), Buffer.from(SLACK_BODY), Number(SLACK_TS) * 1000 + 299_000).ok, true);
  });

  it('when a header is missing or the signature has another length, then it is refused', () => {
    assert.equal(verifySlack(SLACK_SECRET, { 'x-slack-request-timestamp': SLACK_TS }, Buffer.from(SLACK_BODY), SLACK_NOW).ok, false);
    assert.equal(verifySlack(SLACK_SECRET, { 'x-slack-signature': SLACK_SIG }, Buffer.from(SLACK_BODY), SLACK_NOW).ok, false);
    assert.equal(verifySlack(SLACK_SECRET, headers('v0=abc'), Buffer.from(SLACK_BODY), SLACK_NOW).ok, false);
    assert.equal(verifySlack('another-secret', headers(), Buffer.from(SLACK_BODY), SLACK_NOW).ok, false);
  });
});

describe('GitHub webhook signing', () => {
  it("when GitHub's documented example is checked, then the signature matches", () => {
    assert.equal(githubSignature(GH_SECRET, GH_BODY), GH_SIG);
    assert.deepEqual(verifyGithub(GH_SECRET, { 'x-hub-signature-256': GH_SIG }, Buffer.from(GH_BODY)), { ok: true });
  });

  it('when the body, the secret or the header is wrong or missing, then it is refused', () => {
    assert.equal(verifyGithub(GH_SECRET, { 'x-hub-signature-256': GH_SIG }, Buffer.from('Hello, World?')).ok, false);
    assert.equal(verifyGithub('other', { 'x-hub-signature-256': GH_SIG }, Buffer.from(GH_BODY)).ok, false);
    assert.equal(verifyGithub(GH_SECRET, {}, Buffer.from(GH_BODY)).ok, false);
    // The old SHA-1 header alone is not accepted.
    assert.equal(verifyGithub(GH_SECRET, { 'x-hub-signature': 'sha1=0' }, Buffer.from(GH_BODY)).ok, false);
  });
});

describe('MLflow webhook signing', () => {
  it("when MLflow's own signer (the installed mlflow package) signs a delivery, then modelgate computes the same signature", () => {
    const secret = 'mlflow-test-secret';
    const id = '0b0e7c1e-7f55-4d4f-9a3c-1c6f3e2b9a10';
    const ts = '1767225600';
    const body = '{"entity": "model_version", "action": "created", "timestamp": "2026-01-01T00:00:00+00:00", "data": {"name": "m", "version": "1"}}';
    const python = join(PROJECT_ROOT, '.venv', 'bin', 'python');
    const theirs = execFileSync(
      python,
      ['-c', 'import sys; from mlflow.webhooks.delivery import _generate_hmac_signature as g; print(g(*sys.argv[1:5]))', secret, id, ts, body],
      { encoding: 'utf8' },
    ).trim();
    assert.equal(mlflowSignature(secret, id, ts, body), theirs);
    const headers = { 'x-mlflow-delivery-id': id, 'x-mlflow-timestamp': ts, 'x-mlflow-signature': theirs };
    assert.deepEqual(verifyMlflow(secret, headers, Buffer.from(body), Number(ts) * 1000), { ok: true });
    assert.equal(verifyMlflow(secret, headers, Buffer.from(body), (Number(ts) + 301) * 1000).ok, false);
    // The delivery id is part of what is signed: replaying the body under another id fails.
    assert.equal(verifyMlflow(secret, { ...headers, 'x-mlflow-delivery-id': 'other' }, Buffer.from(body), Number(ts) * 1000).ok, false);
    assert.equal(verifyMlflow(secret, { 'x-mlflow-timestamp': ts, 'x-mlflow-signature': theirs }, Buffer.from(body), Number(ts) * 1000).ok, false);
  });
});

describe('delivery dedupe', () => {
  it('when the same id is claimed twice, then only the first claim wins; a released id can be claimed again', () => {
    const d = new DeliveryDedupe(10, 60_000);
    assert.equal(d.claim('a'), true);
    assert.equal(d.claim('a'), false);
    d.release('a');
    assert.equal(d.claim('a'), true);
  });

  it('when more ids than the bound arrive or the TTL passes, then the oldest are forgotten and the size stays bounded', () => {
    let now = 0;
    const d = new DeliveryDedupe(3, 1000, () => now);
    for (const id of ['a', 'b', 'c', 'd']) assert.equal(d.claim(id), true);
    assert.equal(d.size, 3);
    assert.equal(d.claim('a'), true, 'a was evicted by size');
    now = 2000;
    assert.equal(d.claim('d'), true, 'd expired by TTL');
    assert.ok(d.size <= 3);
  });
});

describe('API tokens and config', () => {
  const env = testApiEnv({ MODELGATE_API_TOKENS: 'tok-alice-0123456789abcdef=alice, tok-bob-0123456789abcdef=bob:read' });

  it('when a known token is presented, then its caller is returned with its scopes; unknown, malformed and missing ones are 401', async () => {
    const auth = new Authenticator(loadApiConfig(env).identity.directory);
    const bob = await auth.identify('Bearer tok-bob-0123456789abcdef');
    assert.deepEqual([bob.identity, bob.scopes], ['bob', ['read']]);
    const alice = await auth.identify('Bearer tok-alice-0123456789abcdef');
    assert.deepEqual([alice.identity, alice.groups, alice.scopes], ['alice', ['ml-leads'], ['read', 'promote', 'approve', 'retire']]);
    for (const h of [undefined, '', 'Bearer', 'Basic tok-bob-0123456789abcdef', 'Bearer tok-bob-0123456789abcdeX']) {
      await assert.rejects(auth.identify(h), (e: unknown) => (e as { status?: number }).status === 401, String(h));
    }
  });

  it('when the config is parsed, then bad entries name the key without echoing secrets', () => {
    const c = loadApiConfig(env);
    assert.equal(c.identity.directory.bySlackUser('W02BOB')?.identity, 'bob');
    assert.equal(c.reconcile.intervalMs, 60_000);
    assert.throws(() => loadApiConfig(testApiEnv({ MODELGATE_API_TOKENS: 'short=alice' })), (e: unknown) => e instanceof ConfigError && /MODELGATE_API_TOKENS/.test(e.message) && !e.message.includes('short'));
    assert.throws(() => loadApiConfig(testApiEnv({ MODELGATE_API_TOKENS: 'supersecretvalue-without-identity' })), (e: unknown) => e instanceof ConfigError && !e.message.includes('supersecret'));
    assert.throws(() => loadApiConfig(testApiEnv({ MODELGATE_API_TOKENS: 'tok-zed-0123456789abcdef=zed' })), (e: unknown) => e instanceof ConfigError && /identity "zed", which is not in/.test(e.message) && !e.message.includes('tok-zed'));
    assert.throws(() => loadApiConfig(testApiEnv({ MODELGATE_API_TOKENS: 'tok-kf-0123456789abcdef=kubeflow-pipeline:approve' })), (e: unknown) => e instanceof ConfigError && /beyond the identity's/.test(e.message));
    assert.throws(() => loadApiConfig(testApiEnv({ MODELGATE_SLACK_USERS: 'U1=alice' })), /MODELGATE_SLACK_USERS: Slack users are linked in the identity directory/);
    assert.throws(() => loadApiConfig({ MODELGATE_RECONCILE_INTERVAL_MS: 'soon' }), /MODELGATE_RECONCILE_INTERVAL_MS/);
  });
});
