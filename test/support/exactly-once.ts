/**
 * The exactly-once check of the fault tests, over what a recording proxy saw MLflow apply (answered 2xx): one
 * promotion of a version to Production made each stage transition, each alias move and each tag value once,
 * however many attempts failed on the way (those never reached MLflow, or MLflow refused them).
 */
import assert from 'node:assert/strict';
import { appliedWrites, type RecordingProxy } from './recording-proxy.js';

function countEach(writes: { body?: Record<string, unknown> }[]): Map<string, number> {
  const n = new Map<string, number>();
  for (const w of writes) {
    const k = `${String(w.body?.key)}=${String(w.body?.value)}`;
    n.set(k, (n.get(k) ?? 0) + 1);
  }
  return n;
}

export function assertPromotedOnce(proxy: RecordingProxy, model: string, version: number): void {
  const key = { name: model, version };
  const once = (path: string, match: Record<string, unknown>, what: string) =>
    assert.equal(appliedWrites(proxy, path, match).length, 1, `${what} applied ${appliedWrites(proxy, path, match).length} times`);
  once('model-versions/transition-stage', { ...key, stage: 'Staging' }, 'Staging transition');
  once('model-versions/transition-stage', { ...key, stage: 'Production' }, 'Production transition');
  once('registered-models/alias', { name: model, alias: 'staging', version }, 'staging alias');
  once('registered-models/alias', { name: model, alias: 'production', version }, 'production alias');
  // modelgate.stage legitimately changes (Staging, then Production): each key *and value* once.
  const versionTags = countEach(appliedWrites(proxy, 'model-versions/set-tag', key));
  for (const [k, n] of versionTags) assert.equal(n, 1, `version tag ${k} written ${n} times`);
  assert.ok(versionTags.has('modelgate.approved_by=alice') || versionTags.has('modelgate.approved_by=bob'), [...versionTags.keys()].join(', '));
  // The stage is recorded once: MLflow's own stage while the registry serves stages, else the modelgate.stage tag.
  assert.ok(!versionTags.has('modelgate.stage=Staging') || versionTags.has('modelgate.stage=Production'), [...versionTags.keys()].join(', '));
  // The Production lock's fencing token (a registered-model tag): one grant, one token written.
  const modelTags = countEach(appliedWrites(proxy, 'registered-models/set-tag', { name: model }));
  for (const [k, n] of modelTags) assert.equal(n, 1, `model tag ${k} written ${n} times`);
}
