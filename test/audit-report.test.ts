/**
 * The audit's rules over narrow inputs (MLflow versions and runs, lifecycle states, visibility rows): which
 * version served when, which one it replaced, who approved, the metric diff, the renderings, and the reading
 * order of collectAudit over in-memory sources. The end-to-end audit against a real promotion lives in the
 * lifecycle's test once the workflow runs (see docs/audit.md).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MlflowError } from '../src/mlflow/errors.js';
import { TAG } from '../src/mlflow/tags.js';
import type { ModelVersion, Run } from '../src/mlflow/types.js';
import type { LifecycleState } from '../src/workflows/definitions.js';
import { AuditError, collectAudit, type AuditDeps } from '../src/audit/collect.js';
import { renderAuditMarkdown, renderAuditText } from '../src/audit/format.js';
import { approvalFacts, buildAuditReport, dataLineage, metricDiff } from '../src/audit/report.js';
import { previousProductionVersion, productionAt, productionIntervals } from '../src/audit/timeline.js';
import type { LifecycleReader, VisibilityRow } from '../src/audit/types.js';

const M = 'churn';

function version(v: number, tags: Record<string, string> = {}, extra: Partial<ModelVersion> = {}): ModelVersion {
  return {
    name: M,
    version: v,
    creation_timestamp: Date.parse('2026-01-01T00:00:00Z') + v * 86_400_000,
    current_stage: 'None',
    source: `models:/m-${v}`,
    run_id: `run${v}`,
    status: 'READY',
    tags,
    aliases: [],
    ...extra,
  };
}

function run(id: string, metrics: Record<string, number>, extra: Partial<Run> = {}): Run {
  return { run_id: id, experiment_id: '7', status: 'FINISHED', metrics, params: {}, tags: {}, ...extra };
}

function state(v: number, extra: Partial<LifecycleState> = {}): LifecycleState {
  return { model: M, version: v, workflowId: `modelgate/${M}/v${v}`, stage: 'Production', phase: 'production', approvals: [], timeline: [], ...extra };
}

// v1 promoted Mar 1, superseded by v2 promoted Mar 10 (archived a few seconds later), v3 rejected, v2 serving.
const v1 = version(1, {
  [TAG.promotedAt]: '2026-03-01T10:00:00.000Z',
  [TAG.archivedAt]: '2026-03-10T09:00:05.000Z',
  [TAG.supersededBy]: '2',
  [TAG.outcome]: 'superseded',
  [TAG.stage]: 'Archived',
  [TAG.approvedBy]: 'alice',
  [TAG.approvedAt]: '2026-03-01T09:59:00.000Z',
}, { current_stage: 'Archived' });
const v2 = version(2, {
  [TAG.promotedAt]: '2026-03-10T09:00:00.000Z',
  [TAG.previousVersion]: '1',
  [TAG.stage]: 'Production',
  [TAG.approvedBy]: 'bob,carol',
  [TAG.approvedAt]: '2026-03-10T08:58:00.000Z',
  [TAG.workflowId]: `modelgate/${M}/v2`,
  [TAG.prUrl]: 'https://github.com/acme/deploy/pull/12',
  [TAG.mergeSha]: 'b'.repeat(40),
  [TAG.storageUri]: 's3://models/churn/2',
}, { current_stage: 'Production', aliases: ['production'] });
const v3 = version(3, { [TAG.outcome]: 'rejected' }, { current_stage: 'Staging' });

describe('audit timeline', () => {
  it('when only MLflow tags exist, then Production intervals come from promoted_at / archived_at', () => {
    const intervals = productionIntervals([v3, v2, v1], []);
    assert.deepEqual(intervals, [
      { version: 1, from: '2026-03-01T10:00:00.000Z', to: '2026-03-10T09:00:05.000Z', endedBy: 'superseded by version 2', source: 'mlflow-tags' },
      { version: 2, from: '2026-03-10T09:00:00.000Z', source: 'mlflow-tags' },
    ]);
  });

  it('when asked at times before, during, across and after a supersede, then the version that served then is named', () => {
    const intervals = productionIntervals([v1, v2, v3], []);
    assert.equal(productionAt(intervals, '2026-02-28T00:00:00Z'), null, 'before the first promotion');
    assert.equal(productionAt(intervals, '2026-03-01T10:00:00.000Z'), 1, 'the promotion instant itself');
    assert.equal(productionAt(intervals, '2026-03-05T00:00:00Z'), 1);
    assert.equal(productionAt(intervals, '2026-03-10T09:00:02Z'), 2, 'while v1 is being archived, the alias already points at v2');
    assert.equal(productionAt(intervals, '2026-04-01T00:00:00Z'), 2);
  });

  it('when a lifecycle state is readable, then its promotedAt and "Production → Archived" entry win over the tags', () => {
    const s1 = state(1, {
      stage: 'Archived',
      promotedAt: '2026-03-01T10:00:01.000Z',
      supersededBy: 2,
      outcome: 'superseded',
      timeline: [
        { at: '2026-03-01T10:00:01.000Z', actor: 'alice', action: 'Staging → Production' },
        { at: '2026-03-10T09:00:06.000Z', actor: 'modelgate/churn/v2', action: 'Production → Archived', detail: 'superseded by version 2' },
      ],
    });
    const [i1] = productionIntervals([v1], [s1]);
    assert.deepEqual(i1, { version: 1, from: '2026-03-01T10:00:01.000Z', to: '2026-03-10T09:00:06.000Z', endedBy: 'superseded by version 2', source: 'workflow' });
  });

  it('when a version was retired, then nothing is Production after it until the next promotion', () => {
    const retired = version(1, { [TAG.promotedAt]: '2026-03-01T00:00:00Z', [TAG.archivedAt]: '2026-03-02T00:00:00Z', [TAG.outcome]: 'retired' });
    const later = version(2, { [TAG.promotedAt]: '2026-03-05T00:00:00Z' });
    const intervals = productionIntervals([retired, later], []);
    assert.equal(intervals[0].endedBy, 'retired');
    assert.equal(productionAt(intervals, '2026-03-03T00:00:00Z'), null);
    assert.equal(productionAt(intervals, '2026-03-06T00:00:00Z'), 2);
  });

  it('when looking for the previous Production version, then the lifecycle, then the registry tag, then superseded_by, then the timeline answer', () => {
    const intervals = productionIntervals([v1, v2], []);
    assert.deepEqual(previousProductionVersion(2, state(2, { previousProductionVersion: 1 }), [v1, v2], intervals), { version: 1, source: 'workflow' });
    assert.deepEqual(previousProductionVersion(2, null, [v1, v2], intervals), { version: 1, source: 'mlflow-tags' });
    const v2NoTag = version(2, { [TAG.promotedAt]: v2.tags[TAG.promotedAt] });
    assert.deepEqual(previousProductionVersion(2, null, [v1, v2NoTag], intervals), { version: 1, source: 'mlflow-tags' }, 'v1 says superseded_by=2');
    const v1Bare = version(1, { [TAG.promotedAt]: v1.tags[TAG.promotedAt], [TAG.archivedAt]: v1.tags[TAG.archivedAt] });
    assert.deepEqual(previousProductionVersion(2, null, [v1Bare, v2NoTag], productionIntervals([v1Bare, v2NoTag], [])), { version: 1, source: 'timeline' });
    const first = version(1, { [TAG.previousVersion]: 'none', [TAG.promotedAt]: '2026-03-01T10:00:00Z' });
    assert.deepEqual(previousProductionVersion(1, null, [first], []), { version: null, source: 'mlflow-tags' });
  });
});

describe('audit answers', () => {
  it('when the lifecycle is readable, then approvals carry who, when and how; otherwise the MLflow tags name who', () => {
    const s = state(2, {
      approvals: [
        { by: 'bob', at: '2026-03-10T08:50:00.000Z', via: 'slack' },
        { by: 'carol', at: '2026-03-10T08:58:00.000Z', via: 'pull-request merge' },
      ],
      pullRequest: { provider: 'github', id: '12', url: 'https://github.com/acme/deploy/pull/12', branch: 'modelgate/churn-v2', mergeSha: 'c'.repeat(40), mergedBy: 'carol' },
      promotedAt: '2026-03-10T09:00:00.500Z',
    });
    const fromWorkflow = approvalFacts(v2, s);
    assert.equal(fromWorkflow.source, 'workflow');
    assert.deepEqual(fromWorkflow.approvals.map((a) => `${a.by}@${a.at} via ${a.via}`), [
      'bob@2026-03-10T08:50:00.000Z via slack',
      'carol@2026-03-10T08:58:00.000Z via pull-request merge',
    ]);
    assert.equal(fromWorkflow.approvedAt, '2026-03-10T08:58:00.000Z');
    assert.deepEqual(fromWorkflow.pullRequest, { url: 'https://github.com/acme/deploy/pull/12', mergeSha: 'c'.repeat(40), mergedBy: 'carol' });
    assert.equal(fromWorkflow.promotedAt, '2026-03-10T09:00:00.500Z');

    const fromTags = approvalFacts(v2, null);
    assert.equal(fromTags.source, 'mlflow-tags');
    assert.deepEqual(fromTags.approvals, [{ by: 'bob' }, { by: 'carol' }]);
    assert.equal(fromTags.approvedAt, '2026-03-10T08:58:00.000Z');
    assert.deepEqual(fromTags.pullRequest, { url: 'https://github.com/acme/deploy/pull/12', mergeSha: 'b'.repeat(40), mergedBy: null });
    assert.equal(approvalFacts(v3, null).source, 'none');
  });

  it('when comparing metrics, then every metric of either side is a row and deltas carry no float noise', () => {
    assert.deepEqual(metricDiff({ accuracy: 0.93, f1: 0.9, latency_ms: 12 }, { accuracy: 0.91, f1: 0.9, auc: 0.8 }), [
      { metric: 'accuracy', current: 0.93, previous: 0.91, delta: 0.02 },
      { metric: 'auc', current: null, previous: 0.8, delta: null },
      { metric: 'f1', current: 0.9, previous: 0.9, delta: 0 },
      { metric: 'latency_ms', current: 12, previous: null, delta: null },
    ]);
  });

  it('when reading lineage, then only data.* and training.* tags are data facts, and params are kept', () => {
    const r = run('r', {}, { tags: { 'data.lookback_days': '30', 'training.source': 'warehouse.events', 'mlflow.user': 'dana' }, params: { lr: '0.01' } });
    assert.deepEqual(dataLineage(r), { tags: { 'data.lookback_days': '30', 'training.source': 'warehouse.events' }, params: { lr: '0.01' } });
  });

  it('when the manifest serves something else than MLflow records, then the report says so', () => {
    const report = buildAuditReport({
      model: M,
      generatedAt: '2026-04-01T00:00:00.000Z',
      subject: v2,
      subjectReason: 'production',
      run: run('run2', { accuracy: 0.93 }),
      storageUri: 's3://models/churn/2',
      production: v2,
      state: null,
      previous: { version: 1, source: 'mlflow-tags', run: run('run1', { accuracy: 0.91 }) },
      intervals: productionIntervals([v1, v2], []),
      manifest: { source: 'git:deploy@main:churn.yaml', storageUri: 's3://models/churn/1', revision: 'abc' },
    });
    assert.equal(report.serving.manifest?.agrees, false);
    assert.match(report.notes.join('\n'), /manifest serves s3:\/\/models\/churn\/1/);
    assert.deepEqual(report.comparison.rows, [{ metric: 'accuracy', current: 0.93, previous: 0.91, delta: 0.02 }]);
    assert.equal(report.lifecycle?.workflowId, `modelgate/${M}/v2`);
  });
});

/** In-memory MLflow: enough of the registry for collectAudit, with MLflow's not-found errors. */
function fakeMlflow(versions: ModelVersion[], runs: Run[]): AuditDeps['mlflow'] & { calls: string[] } {
  const calls: string[] = [];
  const notFound = (what: string) => new MlflowError({ status: 404, errorCode: 'RESOURCE_DOES_NOT_EXIST', endpoint: 'x', detail: `${what} not found` });
  return {
    calls,
    searchModelVersions(q) {
      calls.push(`search ${q.filter}`);
      const name = /name='(.*)'/.exec(q.filter ?? '')?.[1];
      return Promise.resolve({ items: versions.filter((v) => v.name === name).sort((a, b) => b.version - a.version) });
    },
    getModelVersion(name, v) {
      const found = versions.find((x) => x.name === name && x.version === v);
      return found ? Promise.resolve(found) : Promise.reject(notFound(`version ${v}`));
    },
    getVersionByAlias(name, alias) {
      return Promise.resolve(versions.find((x) => x.name === name && x.aliases.includes(alias)) ?? null);
    },
    getRun(id) {
      const r = runs.find((x) => x.run_id === id);
      return r ? Promise.resolve(r) : Promise.reject(notFound(`run ${id}`));
    },
    getDownloadUri(name, v) {
      return Promise.resolve(`file:///mlartifacts/${name}/${v}`);
    },
    getRegisteredModel(name) {
      if (!versions.some((v) => v.name === name)) return Promise.reject(notFound(`model ${name}`));
      return Promise.resolve({ name, creation_timestamp: 0, latest_versions: [], tags: {}, aliases: [] });
    },
  };
}

function fakeLifecycles(states: LifecycleState[], rows: VisibilityRow[] = [], opts: { failList?: boolean } = {}): LifecycleReader & { queries: string[] } {
  const queries: string[] = [];
  return {
    queries,
    list(query) {
      queries.push(query);
      if (opts.failList) return Promise.reject(new Error('14 UNAVAILABLE: connect ECONNREFUSED 127.0.0.1:7233'));
      return Promise.resolve(rows);
    },
    state(model, v) {
      return Promise.resolve(states.find((s) => s.model === model && s.version === v) ?? null);
    },
  };
}

describe('collectAudit (in-memory sources)', () => {
  const runs = [
    run('run1', { accuracy: 0.91, f1: 0.88 }, { start_time: Date.parse('2026-02-27T08:00:00Z'), end_time: Date.parse('2026-02-27T09:00:00Z'), user_id: 'dana' }),
    run('run2', { accuracy: 0.93, f1: 0.9 }, {
      start_time: Date.parse('2026-03-08T08:00:00Z'),
      end_time: Date.parse('2026-03-08T09:30:00Z'),
      user_id: 'dana',
      run_name: 'train-churn',
      tags: { 'data.lookback_days': '30', 'training.source': 'warehouse.events' },
      params: { lr: '0.01' },
    }),
  ];
  const mlflow = () => fakeMlflow([v1, v2, v3], runs);

  it('when no version is given, then the Production version is audited and all questions are answered', async () => {
    const s2 = state(2, { approvals: [{ by: 'bob', at: '2026-03-10T08:50:00.000Z', via: 'cli' }], promotedAt: '2026-03-10T09:00:00.000Z', previousProductionVersion: 1 });
    const lifecycles = fakeLifecycles([s2], [{ workflowId: s2.workflowId, runId: 'r', type: 'modelLifecycle', status: 'RUNNING', startTime: '2026-03-09T00:00:00.000Z', model: M, version: 2, stage: 'Production', approvers: ['bob'] }]);
    const report = await collectAudit({ mlflow: mlflow(), lifecycles, now: () => new Date('2026-04-01T00:00:00Z') }, M);
    assert.equal(report.version, 2);
    assert.equal(report.subject, 'production');
    assert.equal(report.serving.productionVersion, 2);
    assert.equal(report.serving.storageUri, 's3://models/churn/2');
    assert.deepEqual(report.metrics, { accuracy: 0.93, f1: 0.9 });
    assert.equal(report.training.startedAt, '2026-03-08T08:00:00.000Z');
    assert.deepEqual(report.data.tags, { 'data.lookback_days': '30', 'training.source': 'warehouse.events' });
    assert.equal(report.approval.source, 'workflow');
    assert.deepEqual(report.approval.approvals, [{ by: 'bob', at: '2026-03-10T08:50:00.000Z', via: 'cli' }]);
    assert.equal(report.comparison.previousVersion, 1);
    assert.equal(report.comparison.source, 'workflow');
    assert.deepEqual(report.comparison.rows.map((r) => [r.metric, r.delta]), [['accuracy', 0.02], ['f1', 0.02]]);
    assert.equal(report.lifecycle?.status, 'RUNNING');
    assert.deepEqual(report.notes, []);
    assert.equal(lifecycles.queries[0], "WorkflowType = 'modelLifecycle' AND ModelName = 'churn'");

    const text = renderAuditText(report);
    for (const q of ['1. What is serving', '2. Metrics', '3. When trained', '4. What data', '5. Who approved it, when', '6. Compared with version 1', '7. Production history']) {
      assert.ok(text.includes(q), `text has "${q}"`);
    }
    const md = renderAuditMarkdown(report);
    assert.match(md, /^## Audit: churn version 2/);
    assert.match(md, /\| accuracy \| 0\.93 \| 0\.91 \| \+0\.02 \|/);
  });

  it('when --at names a time, then the version serving then is audited and named, before and after the supersede', async () => {
    const before = await collectAudit({ mlflow: mlflow(), lifecycles: fakeLifecycles([]) }, M, { at: '2026-03-05T00:00:00Z' });
    assert.equal(before.version, 1);
    assert.equal(before.subject, 'production_at');
    assert.deepEqual(before.productionAt, { at: '2026-03-05T00:00:00.000Z', version: 1 });
    assert.equal(before.serving.subjectIsServing, false);
    assert.equal(before.approval.source, 'mlflow-tags');
    assert.deepEqual(before.approval.approvals, [{ by: 'alice' }]);
    assert.equal(before.serving.storageUri, 'file:///mlartifacts/churn/1', 'no storage tag: MLflow download URI');
    const after = await collectAudit({ mlflow: mlflow() }, M, { at: '2026-03-11T00:00:00Z' });
    assert.equal(after.version, 2);
    const pinned = await collectAudit({ mlflow: mlflow() }, M, { version: 2, at: '2026-03-05T00:00:00Z' });
    assert.equal(pinned.version, 2);
    assert.equal(pinned.subject, 'requested');
    assert.deepEqual(pinned.productionAt, { at: '2026-03-05T00:00:00.000Z', version: 1 });
  });

  it('when Temporal cannot be read, then the answers come from MLflow tags and the report notes it', async () => {
    const report = await collectAudit({ mlflow: mlflow(), lifecycles: fakeLifecycles([], [], { failList: true }) }, M);
    assert.equal(report.approval.source, 'mlflow-tags');
    assert.equal(report.comparison.previousVersion, 1);
    assert.equal(report.comparison.source, 'mlflow-tags');
    assert.match(report.notes.join('\n'), /Temporal visibility could not be read/);
    assert.match(report.notes.join('\n'), /lifecycle modelgate\/churn\/v2 could not be read/);
  });

  it('when the question cannot be answered, then one line says why', async () => {
    await assert.rejects(collectAudit({ mlflow: mlflow() }, 'nope'), (e: unknown) => e instanceof AuditError && /no registered model named "nope"/.test(e.message));
    await assert.rejects(collectAudit({ mlflow: mlflow() }, M, { version: 9 }), /no version 9 of model churn/);
    await assert.rejects(collectAudit({ mlflow: mlflow() }, M, { at: '2020-01-01T00:00:00Z' }), /no version of churn was in Production at 2020-01-01T00:00:00.000Z/);
    await assert.rejects(collectAudit({ mlflow: mlflow() }, M, { at: 'yesterday' }), /--at must be an ISO time/);
    const noProd = fakeMlflow([v3], []);
    await assert.rejects(collectAudit({ mlflow: noProd }, M), /has no Production version; pass --version/);
  });
});
