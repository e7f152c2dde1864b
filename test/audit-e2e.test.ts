/**
 * End to end on the real stack: the real modelLifecycle (registry mode) promotes v1 (approved by one person),
 * then v2 (approved by another) supersedes it. The worker's cache activity calls the API's invalidation route,
 * so the active-version endpoint (TTL far beyond the test) follows each Production change; then `modelgate
 * audit` answers from the lifecycles' states, `--at` names the version serving before and after the
 * supersede, and `modelgate history --approver` finds the promotion.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import Fastify, { type FastifyInstance } from 'fastify';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { request } from 'undici';
import { getState } from '../src/client.js';
import { approve, startLifecycle } from './support/identity.js';
import { ActiveVersionCache } from '../src/active/service.js';
import type { ActiveVersion } from '../src/active/types.js';
import { activeRoutes } from '../src/api/routes/active.js';
import type { AuditReport } from '../src/audit/types.js';
import type { HistoryEntry } from '../src/audit/history.js';
import { registerAuditCommand } from '../src/cli/commands/audit.js';
import { registerHistoryCommand } from '../src/cli/commands/history.js';
import type { MlflowClient } from '../src/mlflow/client.js';
import { parsePolicy } from '../src/policy/load.js';
import { lifecycleWorkflowId, type LifecycleState } from '../src/workflows/definitions.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';
import { registerTrainedVersion, testMlflow } from './support/fixtures.js';
import { eventually, startTestWorker, type RunningWorker } from './support/worker.js';

const TOKEN = 'audit-e2e-internal-token-0123456789';
const POLICY = `
defaults:
  evaluation: { thresholds: ["accuracy >= 0.5"], requiredTags: [data.lookback_days] }
  approval: { approvers: [alice, bob], fourEyes: true, quorum: 1, expiresAfter: 1h }
  deployment: { mode: registry }
`;

describe('audit trail and active endpoint after real promotions', () => {
  let env: TestWorkflowEnvironment;
  let mlflow: MlflowClient;
  let worker: RunningWorker;
  let app: FastifyInstance;
  let base: string;
  const model = unique('e2e-audit');
  const alice = 'alice';
  let v1: number;
  let v2: number;
  let s1: LifecycleState;
  let s2: LifecycleState;

  before(async () => {
    env = await connectTestEnv();
    mlflow = testMlflow(testStack().mlflowUri);
    const cache = new ActiveVersionCache(mlflow, { ttlMs: 10 * 60_000, staleWhileRevalidateMs: 0, maxWaitMs: 60_000 });
    app = Fastify({ logger: false });
    await app.register(activeRoutes(cache, { invalidateToken: TOKEN }));
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    const set = parsePolicy(POLICY, 'audit-e2e-policy.yaml');
    worker = await startTestWorker(env, {
      mlflow,
      policies: { policyFor: (m) => ({ ...set.policyFor(m), model: m }) },
      // The API is another process in production: the worker reaches it over HTTP with the internal token.
      cache: { invalidateUrl: base, token: TOKEN },
    });
  });

  after(async () => {
    await worker?.stop();
    await app?.close();
    await mlflow?.close();
    await env?.teardown();
  });

  const phaseIs = (version: number, phase: LifecycleState['phase']) =>
    eventually(`${model} v${version} in ${phase}`, async () => {
      const s = await getState(env.client, model, version);
      return s.phase === phase ? s : undefined;
    }, 120_000);

  async function active(): Promise<{ status: number; body: ActiveVersion & { code?: string } }> {
    const res = await request(`${base}/v1/models/${model}/active`);
    return { status: res.statusCode, body: (await res.body.json()) as ActiveVersion & { code?: string } };
  }

  async function promote(by: string, metrics: Record<string, number>): Promise<{ version: number; state: LifecycleState }> {
    const { version } = await registerTrainedVersion(mlflow, model, { user: 'dana', metrics });
    await startLifecycle(env.client, model, version, { source: 'test' }, worker.taskQueue);
    await phaseIs(version, 'awaiting_approval');
    await approve(env.client, model, version, { by, via: 'cli', comment: `ship v${version}` });
    return { version, state: await phaseIs(version, 'production') };
  }

  it('when v1 and then v2 are promoted, then the endpoint serves each as soon as its lifecycle reaches Production', async () => {
    assert.equal((await active()).body.code, 'no_production_version');
    ({ version: v1, state: s1 } = await promote(alice, { accuracy: 0.91, latency_p99_ms: 30 }));
    // The lifecycle's cache activity ran before the phase became `production`: no TTL wait.
    const first = await active();
    assert.equal(first.status, 200);
    assert.equal(first.body.version, v1);
    assert.deepEqual(first.body.approvedBy, [alice]);
    assert.equal(first.body.promotedAt !== null, true);
    assert.equal(first.body.workflowId, lifecycleWorkflowId(model, v1));
    assert.deepEqual(first.body.metrics, { accuracy: 0.91, latency_p99_ms: 30 });
    assert.equal(first.body.stage, 'Production');
    assert.deepEqual(first.body.aliases, ['production']);
    assert.match(first.body.storageUri ?? '', /\/artifacts\/model$/);

    ({ version: v2, state: s2 } = await promote('bob', { accuracy: 0.95, latency_p99_ms: 25 }));
    const second = await active();
    assert.equal(second.body.version, v2);
    assert.deepEqual(second.body.approvedBy, ['bob']);
    assert.equal(second.body.stale, undefined);
  });

  const runCli = async (register: (p: Command, out: { write(t: string): void }) => void, args: string[]): Promise<string> => {
    let out = '';
    const program = new Command('modelgate').enablePositionalOptions().exitOverride().configureOutput({ writeErr: () => undefined });
    register(program, { write: (t) => (out += t) });
    await program.parseAsync(['node', 'modelgate', ...args]);
    return out;
  };
  const audit = (...args: string[]) => runCli((p, o) => registerAuditCommand(p, () => Promise.resolve({ client: env.client, mlflow }), o), ['audit', model, ...args]);

  it('when audited, then the answers come from the lifecycles: approvals with who/when/how, previous version and diff', async () => {
    assert.ok(v2, 'needs the promotions of the previous test');
    const old = (await env.client.workflow.getHandle(lifecycleWorkflowId(model, v1)).result()) as LifecycleState;
    assert.equal(old.outcome, 'superseded');
    const r = JSON.parse(await audit('--json')) as AuditReport;
    assert.equal(r.version, v2);
    assert.equal(r.serving.productionVersion, v2);
    assert.deepEqual(r.metrics, { accuracy: 0.95, latency_p99_ms: 25 });
    assert.deepEqual(r.data.tags, { 'data.lookback_days': '30', 'training.source': 's3://datalake/fraud/2026-11' });
    assert.equal(r.approval.source, 'workflow');
    assert.deepEqual(r.approval.approvals.map((a) => [a.by, a.via, a.comment]), [['bob', 'cli', `ship v${v2}`]]);
    assert.equal(r.approval.approvedAt, s2.approvals[0].at);
    assert.equal(r.approval.promotedAt, s2.promotedAt);
    assert.deepEqual([r.comparison.previousVersion, r.comparison.source], [v1, 'workflow']);
    assert.deepEqual(r.comparison.rows, [
      { metric: 'accuracy', current: 0.95, previous: 0.91, delta: 0.04 },
      { metric: 'latency_p99_ms', current: 25, previous: 30, delta: -5 },
    ]);
    assert.deepEqual(r.productionHistory.map((i) => [i.version, i.source, i.to !== undefined]), [[v1, 'workflow', true], [v2, 'workflow', false]]);
    assert.equal(r.lifecycle?.status, 'RUNNING');
    assert.deepEqual(r.notes, []);
  });

  it('when asked about a time before and after the supersede, then the version that was Production then is named', async () => {
    assert.ok(v2, 'needs the promotions of the previous tests');
    const between = new Date((Date.parse(s1.promotedAt!) + Date.parse(s2.promotedAt!)) / 2).toISOString();
    const before = JSON.parse(await audit('--at', between, '--json')) as AuditReport;
    assert.deepEqual(before.productionAt, { at: between, version: v1 });
    assert.equal(before.version, v1);
    assert.deepEqual(before.approval.approvals.map((a) => a.by), [alice]);
    assert.equal(before.lifecycle?.outcome, 'superseded');
    const afterT = new Date(Date.parse(s2.promotedAt!) + 1).toISOString();
    assert.equal((JSON.parse(await audit('--at', afterT, '--json')) as AuditReport).version, v2);
    const earlier = new Date(Date.parse(s1.promotedAt!) - 60_000).toISOString();
    await assert.rejects(audit('--at', earlier), /no version of .* was in Production at/);
  });

  it('when history is asked by approver, then the approver\'s promotion is listed with its outcome', async () => {
    assert.ok(v2, 'needs the promotions of the previous tests');
    const history = (...args: string[]) => runCli((p, o) => registerHistoryCommand(p, () => Promise.resolve({ client: env.client }), o), ['history', ...args]);
    const mine = await eventually('alice\'s promotion in visibility', async () => {
      const rows = (JSON.parse(await history('--approver', alice, '--json')) as HistoryEntry[]).filter((e) => e.model === model);
      return rows.length === 1 && rows[0].outcome === 'superseded' ? rows : undefined;
    });
    assert.deepEqual(mine.map((e) => [e.version, e.event, e.detail]), [[v1, 'promotion', 'was Production; superseded']]);
    const all = await eventually('both lifecycles of the model', async () => {
      const rows = JSON.parse(await history(model, '--json')) as HistoryEntry[];
      return rows.length === 2 ? rows : undefined;
    });
    assert.deepEqual(all.map((e) => [e.version, e.event, e.approvers]), [[v2, 'promotion', ['bob']], [v1, 'promotion', [alice]]]);
  });
});
