/**
 * The soak (bench/soak/driver.ts) in small: about a minute, 4 models, 2 worker kills, against the test stack's
 * Temporal and MLflow. Its invariants must pass — and the checker must fail on a snapshot with a duplicate side
 * effect or a second Production version injected, so a broken checker cannot pass in silence.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runSoak, type SoakReport } from '../bench/soak/driver.js';
import { checkInvariants, formatTable, type SoakSnapshot } from '../bench/soak/invariants.js';
import { soakSettings } from '../bench/soak/settings.js';
import { testStack, unique } from './support/stack.js';

const byName = (rows: ReturnType<typeof checkInvariants>, prefix: string) => rows.find((r) => r.name.startsWith(prefix))!;
const clone = (s: SoakSnapshot): SoakSnapshot => structuredClone(s);

describe('the soak, in small', () => {
  let report: SoakReport;

  it('when 4 models run for a minute while the worker is killed twice, then every invariant passes', async () => {
    report = await runSoak({
      temporalAddress: testStack().temporalAddress,
      mlflowUri: testStack().mlflowUri,
      dataDir: testStack().dataDir,
      durationMs: 60_000,
      models: 4,
      seed: 42,
      killEveryMs: 15_000,
      maxKills: 2,
      expiresAfterSec: 15,
      prefix: unique('soak'),
    });
    const table = formatTable(report.rows).join('\n');
    // Every row, the replay of every history it left included (the TMPRL1100 of stop 11 showed up there first).
    for (const row of report.rows) assert.ok(row.pass, table);
    assert.ok(report.rows.some((r) => r.name.startsWith('every history replays')), table);
    assert.equal(report.figures.workerKills, 2, table);
    assert.equal(report.figures.duplicateSideEffects, 0);
    assert.ok(report.figures.lifecyclesStarted >= 4, JSON.stringify(report.figures));
    assert.ok(report.figures.mlflowWrites > 0);
  });

  it('when a duplicate side effect is injected into the snapshot, then the checker fails on it', () => {
    assert.ok(report, 'the soak ran');
    const s = clone(report.snapshot);
    const production = s.applied.find((w) => w.path.startsWith('model-versions/transition-stage') && w.body?.stage === 'Production');
    assert.ok(production, 'the soak promoted at least one version');
    s.applied.push(structuredClone(production));
    const rows = checkInvariants(s);
    assert.equal(byName(rows, 'no duplicate side effect').pass, false, formatTable(rows).join('\n'));
    // ×2 for a version promoted in one run; a version promoted again (rollback) is allowed one per run.
    assert.match(byName(rows, 'no duplicate side effect').detail, /→ Production ×\d+/);
  });

  it('when a second Production version is injected, then the checker fails on exactly-one-Production and on agreement', () => {
    const s = clone(report.snapshot);
    const model = s.models.find((m) => m.versions.some((v) => v.phase === 'production'));
    assert.ok(model, 'some model has a serving version');
    // An ended lifecycle whose version MLflow still shows in Production: a second Production version.
    const version = Math.max(...model.versions.map((v) => v.version)) + 1;
    model.versions.push({ version, stage: 'Production', mlflowStage: 'Production', aliases: [], tags: {}, phase: 'done', outcome: 'superseded' });
    s.runs[`${model.model}#${version}`] = 1;
    const rows = checkInvariants(s);
    assert.equal(byName(rows, 'exactly one Production').pass, false, formatTable(rows).join('\n'));
    assert.equal(byName(rows, 'MLflow stage/alias/tags agree').pass, false);
  });

  it('when a lock token is rewritten with the same value, then it passes only if the lock history shows one scheduled grant', () => {
    const write = { path: 'registered-models/set-tag', body: { name: 'm', key: 'modelgate.lock_token', value: '1796144922184' } };
    const base: SoakSnapshot = { models: [], applied: [write, structuredClone(write)], runs: {}, stagesServed: false };
    const dup = (s: SoakSnapshot) => byName(checkInvariants(s), 'no duplicate side effect');
    assert.equal(dup(base).pass, false, 'without the lock history it is a grant applied twice');
    assert.equal(dup({ ...base, lockTokenGrants: { 'm#1796144922184': { scheduled: 2, attempts: [1, 1] } } }).pass, false);
    const retried = dup({ ...base, lockTokenGrants: { 'm#1796144922184': { scheduled: 1, attempts: [2] } } });
    assert.equal(retried.pass, true, retried.detail);
    assert.match(retried.detail, /1 idempotent lock-token rewrite/);
  });

  it('when a lifecycle is left mid-way, then the checker reports it stuck', () => {
    const s = clone(report.snapshot);
    const v = s.models[0].versions.find((x) => s.runs[`${s.models[0].model}#${x.version}`])!;
    v.phase = 'deploying';
    assert.equal(byName(checkInvariants(s), 'no workflow stuck').pass, false);
  });

  it('when the soak settings are bad, then they name the key and the reason', () => {
    assert.equal(soakSettings({ MODELGATE_SOAK_MINUTES: '0.5', MODELGATE_SOAK_SEED: '7' }).minutes, 0.5);
    assert.equal(soakSettings({ MODELGATE_SOAK_SEED: '7' }).seed, 7);
    assert.equal(soakSettings({}).minutes, 10);
    assert.throws(() => soakSettings({ MODELGATE_SOAK_MINUTES: 'forever' }), /MODELGATE_SOAK_MINUTES: must be a number of minutes/);
    assert.throws(() => soakSettings({ MODELGATE_SOAK_SEED: '1.5' }), /MODELGATE_SOAK_SEED: must be an integer/);
  });
});
