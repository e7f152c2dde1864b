/**
 * Which version was Production when: intervals built from the lifecycle states (promotedAt, the timeline's
 * "Production → Archived" entry) and, for versions whose lifecycle cannot be read, from the MLflow tags the
 * lifecycle wrote (modelgate.promoted_at, modelgate.archived_at, modelgate.superseded_by).
 */
import { TAG } from '../mlflow/tags.js';
import type { ModelVersion } from '../mlflow/types.js';
import type { LifecycleState } from '../workflows/definitions.js';
import type { ProductionInterval } from './types.js';

function validIso(s: string | undefined): string | undefined {
  return s && Number.isFinite(Date.parse(s)) ? new Date(Date.parse(s)).toISOString() : undefined;
}

export function productionIntervals(versions: ModelVersion[], states: LifecycleState[]): ProductionInterval[] {
  // One version may have several runs (re-promoted, rolled back to): each run that reached Production is a period.
  const byVersion = new Map<number, { v?: ModelVersion; s: LifecycleState[] }>();
  for (const v of versions) byVersion.set(v.version, { s: [], ...byVersion.get(v.version), v });
  for (const s of states) {
    const e = byVersion.get(s.version) ?? { s: [] };
    e.s.push(s);
    byVersion.set(s.version, e);
  }
  const out: ProductionInterval[] = [];
  for (const [version, { v, s: runs }] of byVersion) {
    const tags = v?.tags ?? {};
    const promoted = runs.filter((s) => validIso(s.promotedAt));
    for (const s of promoted) {
      const from = validIso(s.promotedAt)!;
      const endEntry = s.timeline.find((t) => t.action.startsWith('Production → '));
      // The tags describe the version's latest period only.
      const latest = s === promoted.reduce((a, b) => (validIso(b.promotedAt)! > validIso(a.promotedAt)! ? b : a));
      const to = validIso(endEntry?.at) ?? (latest ? after(validIso(tags[TAG.archivedAt]), from) : undefined);
      const taggedBy = latest && tags[TAG.supersededBy] ? Number(tags[TAG.supersededBy]) : undefined;
      out.push(interval(version, from, to, s.supersededBy ?? taggedBy, s.outcome ?? (latest ? tags[TAG.outcome] : undefined), 'workflow'));
    }
    if (promoted.length) continue;
    const from = validIso(tags[TAG.promotedAt]);
    if (!from) continue;
    // An archived_at older than promoted_at is left from an earlier period (the version was promoted again).
    const to = after(validIso(tags[TAG.archivedAt]), from);
    const supersededBy = tags[TAG.supersededBy] && to ? Number(tags[TAG.supersededBy]) : undefined;
    out.push(interval(version, from, to, supersededBy, to ? tags[TAG.outcome] : undefined, 'mlflow-tags'));
  }
  return out.sort((a, b) => a.from.localeCompare(b.from) || a.version - b.version);
}

function after(t: string | undefined, from: string): string | undefined {
  return t && t >= from ? t : undefined;
}

function interval(version: number, from: string, to: string | undefined, supersededBy: number | undefined, outcome: string | undefined, source: ProductionInterval['source']): ProductionInterval {
  const endedBy =
    supersededBy !== undefined && Number.isFinite(supersededBy)
      ? `superseded by version ${supersededBy}`
      : outcome === 'retired'
        ? 'retired'
        : to
          ? (outcome ?? 'archived')
          : undefined;
  return { version, from, ...(to ? { to } : {}), ...(endedBy ? { endedBy } : {}), source };
}

/**
 * The version serving at `at`: among intervals containing it, the one promoted last (a superseder is promoted a
 * moment before its predecessor is archived, and it is the one the alias points at).
 */
export function productionAt(intervals: ProductionInterval[], at: string): number | null {
  const t = Date.parse(at);
  let best: ProductionInterval | undefined;
  for (const i of intervals) {
    const from = Date.parse(i.from);
    const to = i.to ? Date.parse(i.to) : Infinity;
    if (from <= t && t < to && (!best || from >= Date.parse(best.from))) best = i;
  }
  return best ? best.version : null;
}

/**
 * The Production version this one replaced: the lifecycle's own record, else the tag the registry writes before
 * moving the alias, else the Archived version marked superseded by this one, else the timeline.
 */
export function previousProductionVersion(
  version: number,
  state: LifecycleState | null,
  versions: ModelVersion[],
  intervals: ProductionInterval[],
): { version: number | null; source: 'workflow' | 'mlflow-tags' | 'timeline' } | null {
  if (state?.previousProductionVersion !== undefined) return { version: state.previousProductionVersion, source: 'workflow' };
  const self = versions.find((v) => v.version === version);
  const recorded = self?.tags[TAG.previousVersion];
  if (recorded === 'none') return { version: null, source: 'mlflow-tags' };
  if (recorded && /^[1-9]\d*$/.test(recorded)) return { version: Number(recorded), source: 'mlflow-tags' };
  const superseded = versions
    .filter((v) => v.tags[TAG.supersededBy] === String(version))
    .sort((a, b) => b.version - a.version)[0];
  if (superseded) return { version: superseded.version, source: 'mlflow-tags' };
  const mine = intervals.find((i) => i.version === version);
  if (mine) {
    const before = new Date(Date.parse(mine.from) - 1).toISOString();
    const prev = productionAt(intervals.filter((i) => i.version !== version), before);
    if (prev !== null) return { version: prev, source: 'timeline' };
  }
  return null;
}
