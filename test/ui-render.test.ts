/**
 * The page's pure parts without a stack: the escaping tag and URL guards, the sealed session and CSRF check,
 * the decision-button rules, and the "What if?" panel rendered from a fixture DryRunReport.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { html, safeUrl } from '../src/ui/html.js';
import { safeNext } from '../src/ui/login.js';
import { UiSessions, SESSION_COOKIE } from '../src/ui/session.js';
import { decisionRights } from '../src/ui/eligibility.js';
import { whatIf } from '../src/ui/version-page.js';
import { parsePolicy } from '../src/policy/load.js';
import type { DryRunReport } from '../src/dryrun/types.js';
import type { LifecycleState } from '../src/workflows/definitions.js';
import { loadUiConfig } from '../src/config/ui.js';
import { ConfigError } from '../src/config.js';

const policy = parsePolicy(
  `defaults:
  evaluation: { thresholds: ["accuracy >= 0.9"] }
  approval: { approvers: [alice, bob, carol], fourEyes: true, quorum: 2, expiresAfter: 1h }
  deployment: { mode: registry }
models:
  churn:
`,
  'render-test.yaml',
).policyFor('churn');

function waiting(over: Partial<LifecycleState> = {}): LifecycleState {
  return {
    model: 'churn', version: 3, workflowId: 'modelgate/churn/v3', stage: 'Staging', phase: 'awaiting_approval', policy,
    approvals: [], timeline: [], facts: { model: 'churn', version: 3, source: 's', status: 'READY', createdAt: '2026-01-01T00:00:00Z', registrant: 'carol' },
    ...over,
  };
}

const all = ['read', 'approve'] as const;

describe('ui rendering and rules', () => {
  it('when values hold markup or quotes, then the html tag escapes them and only its own output passes through', () => {
    const evil = `<script>alert("x")</script>'\``;
    const out = html`<p title="${evil}">${evil}${html`<b>${evil}</b>`}${[evil, 1, null, undefined, false]}</p>`.value;
    assert.ok(!out.includes('<script>'));
    assert.equal(out.match(/&lt;script&gt;/g)?.length, 4);
    assert.ok(out.includes('<b>') && out.includes('&quot;') && out.includes('&#39;') && out.includes('&#96;'));
  });

  it('when a link or redirect target is not ours or not http(s), then it is neutralised', () => {
    assert.equal(safeUrl('javascript:alert(1)'), '#');
    assert.equal(safeUrl('data:text/html,x'), '#');
    assert.equal(safeUrl('//evil.example/x'), '#');
    assert.equal(safeUrl('https://github.com/acme/pr/1'), 'https://github.com/acme/pr/1');
    assert.equal(safeNext('https://evil.example/'), '/ui/');
    assert.equal(safeNext('//evil.example/ui/'), '/ui/');
    assert.equal(safeNext('/ui/\\evil'), '/ui/');
    assert.equal(safeNext('/ui/models/a'), '/ui/models/a');
  });

  it('when a session is sealed, then only this key and purpose open it, it expires, and the CSRF check wants its token from this origin', async () => {
    let now = 1_000_000;
    const s = new UiSessions({ key: 'k'.repeat(32), secureCookies: false, ttlMs: 60_000, now: () => now });
    const app = Fastify();
    let cookie = '';
    app.get('/ui/in', (req, reply) => {
      s.establishSession(req, reply, { identity: 'alice', via: 'token', scopes: ['read'], expiresAt: now + 10 * 60_000 });
      return reply.send('ok');
    });
    app.post('/ui/check', (req, reply) => {
      const session = s.readSession(req);
      if (!session) return reply.status(401).send('none');
      s.checkCsrf(req, session);
      return reply.send(s.csrfToken(session));
    });
    app.get('/ui/token', (req, reply) => reply.send(s.readSession(req)?.csrf ?? ''));
    const r = await app.inject({ method: 'GET', url: '/ui/in' });
    cookie = String(r.headers['set-cookie']).split(';')[0];
    assert.match(String(r.headers['set-cookie']), /Max-Age=60(;|$)/, 'capped at the TTL');
    const token = (await app.inject({ method: 'GET', url: '/ui/token', headers: { cookie } })).body;
    assert.ok(token.length > 20);
    const post = (headers: Record<string, string>) => app.inject({ method: 'POST', url: '/ui/check', headers: { cookie, host: 'mg.example', ...headers } });
    assert.equal((await post({ 'x-csrf-token': token })).statusCode, 200);
    assert.equal((await post({ 'x-csrf-token': token, origin: 'https://mg.example' })).statusCode, 200);
    assert.equal((await post({ 'x-csrf-token': token, origin: 'https://evil.example' })).statusCode, 403);
    assert.equal((await post({ 'x-csrf-token': token, referer: 'https://evil.example/page' })).statusCode, 403);
    assert.equal((await post({ 'x-csrf-token': 'nope' })).statusCode, 403);
    assert.equal((await post({})).statusCode, 403);
    assert.equal(s.open('login-form', cookie.slice(SESSION_COOKIE.length + 1)), undefined, 'a session is not another purpose');
    now += 61_000;
    assert.equal((await post({ 'x-csrf-token': token })).statusCode, 401, 'expired');
    await app.close();
  });

  it('when MODELGATE_UI_SESSION_KEY is short, then config fails naming the key without echoing it; unset, a key is generated', () => {
    assert.throws(() => loadUiConfig({ MODELGATE_UI_SESSION_KEY: 'short-secret' }), (e: unknown) => e instanceof ConfigError && /^MODELGATE_UI_SESSION_KEY: must be at least 32 bytes$/.test(e.message));
    const c = loadUiConfig({});
    assert.equal(c.sessionKeyGenerated, true);
    assert.ok(Buffer.byteLength(c.sessionKey) >= 32);
    assert.equal(loadUiConfig({ MODELGATE_UI_SECURE_COOKIES: 'true', MODELGATE_UI_SESSION_KEY: 'x'.repeat(32) }).secureCookies, true);
  });

  it('when the page decides which buttons to show, then scope, phase, approver list, four-eyes and quorum each give their reason', () => {
    assert.equal(decisionRights(waiting(), { identity: 'alice', groups: [], scopes: [...all] }).approve.may, true);
    assert.equal(decisionRights(waiting(), { identity: 'alice', groups: [], scopes: ['read'] }).approve.code, 'insufficient_scope');
    const self = decisionRights(waiting(), { identity: 'carol', groups: [], scopes: [...all] });
    assert.equal(self.approve.reason, 'you registered this version (four-eyes)');
    assert.equal(self.reject.may, true, 'a registrant may still reject');
    const mallory = decisionRights(waiting(), { identity: 'mallory', groups: [], scopes: [...all] });
    assert.equal(mallory.approve.code, 'not_an_approver');
    assert.equal(mallory.reject.may, false);
    const bobDone = decisionRights(waiting({ approvals: [{ by: 'bob', at: '2026-01-01T00:00:00Z', via: 'ui', verified: true }] }), { identity: 'bob', groups: [], scopes: [...all] });
    assert.match(bobDone.approve.reason ?? '', /^quorum 2: bob already approved/);
    assert.equal(decisionRights(waiting({ phase: 'production', stage: 'Production' }), { identity: 'alice', groups: [], scopes: [...all] }).approve.code, 'not_awaiting_approval');
    assert.equal(decisionRights(null, { identity: 'alice', groups: [], scopes: [...all] }).approve.code, 'no_lifecycle');
  });

  it('when a dry-run report is given, then the What if? panel shows its outcome, blockers and caller verdict escaped; without one it says unavailable', () => {
    const report: DryRunReport = {
      model: 'churn', version: 3, generatedAt: '2026-01-01T00:00:00Z', outcome: 'rejected_by_evaluation',
      blockers: ['accuracy 0.8 < 0.9 <script>'], notes: ['baseline lacks latency'],
      policy: { source: 'model', file: 'deployed', fileName: 'policy.yaml', effective: policy },
      candidate: { stage: 'None', status: 'READY', createdAt: '2026-01-01T00:00:00Z', registrant: 'carol' },
      serving: { version: 2, source: 'registry' },
      move: { kind: 'promote', detail: 'newer than serving version 2' },
      evaluation: { skipped: false },
      approval: { approvers: ['alice', 'bob'], quorum: 2, fourEyes: true, expiresAfterMs: 3600_000, registrants: ['carol'], fourEyesSatisfiable: true, approvedBy: [], reapproval: { needed: false, reason: '' }, caller: { identity: 'carol', may: false, code: 'self_approval', reason: 'you registered this version (four-eyes)' } },
      rollout: { mode: 'registry', waitsFor: 'the production alias to move' },
    };
    const out = whatIf({ report }).value;
    assert.match(out, /rejected by evaluation/);
    assert.match(out, /accuracy 0\.8 &lt; 0\.9 &lt;script&gt;/);
    assert.match(out, /may not approve: you registered this version \(four-eyes\)/);
    assert.match(out, /version 2 \(registry\)/);
    assert.match(whatIf({ unavailable: 'dry run unavailable' }).value, /data-testid="dryrun-unavailable">dry run unavailable/);
  });
});
