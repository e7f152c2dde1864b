/**
 * Reads what the audit needs — MLflow (versions, alias, runs), Temporal (visibility rows, lifecycle states) and
 * optionally the GitOps manifest — and hands it to the pure report builder. Temporal or the manifest being
 * unreachable is a note in the report, not a failure: MLflow's tags carry the same story in less detail.
 */
import { MlflowError } from '../mlflow/errors.js';
import { ALIAS, TAG } from '../mlflow/tags.js';
import type { MlflowRegistry, ModelVersion, Run } from '../mlflow/types.js';
import { LIFECYCLE_WORKFLOW, type LifecycleState } from '../workflows/definitions.js';
import { buildAuditReport } from './report.js';
import { queryLiteral } from './temporal.js';
import { previousProductionVersion, productionAt, productionIntervals } from './timeline.js';
import type { AuditReport, LifecycleReader, LifecycleRun, ServingFacts, ServingReader, VisibilityRow } from './types.js';
import { foldContinued } from './runs.js';

export interface AuditDeps {
  mlflow: Pick<MlflowRegistry, 'searchModelVersions' | 'getModelVersion' | 'getVersionByAlias' | 'getRun' | 'getDownloadUri' | 'getRegisteredModel'>;
  lifecycles?: LifecycleReader;
  serving?: ServingReader;
  now?: () => Date;
}

export interface AuditOptions {
  version?: number;
  /** ISO time: which version was Production then (and, without `version`, audit that one). */
  at?: string;
  /** Versions of the model read at most (newest first). */
  maxVersions?: number;
}

/** A problem the person asking can fix (unknown model, no Production version, bad time); one line. */
export class AuditError extends Error {
  override name = 'AuditError';
}

const isNotFound = (err: unknown) => err instanceof MlflowError && err.errorCode === 'RESOURCE_DOES_NOT_EXIST';

export function mlflowLiteral(value: string): string {
  if (!value.includes("'")) return `'${value}'`;
  if (!value.includes('"')) return `"${value}"`;
  throw new AuditError(`model name ${JSON.stringify(value)} has quotes of both kinds; MLflow search cannot express it`);
}

async function allVersions(mlflow: AuditDeps['mlflow'], model: string, max: number): Promise<ModelVersion[]> {
  const out: ModelVersion[] = [];
  let pageToken: string | undefined;
  do {
    const page = await mlflow.searchModelVersions({
      filter: `name=${mlflowLiteral(model)}`,
      maxResults: Math.min(200, max - out.length),
      orderBy: ['version_number DESC'],
      pageToken,
    });
    out.push(...page.items.filter((v) => v.name === model));
    pageToken = page.nextPageToken;
  } while (pageToken && out.length < max);
  return out;
}

async function runOrNull(mlflow: AuditDeps['mlflow'], runId: string | undefined): Promise<Run | null> {
  if (!runId) return null;
  try {
    return await mlflow.getRun(runId);
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

/** At most `limit` calls of `fn` at once, results in order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    }),
  );
  return out;
}

export async function collectAudit(deps: AuditDeps, model: string, opts: AuditOptions = {}): Promise<AuditReport> {
  const { mlflow } = deps;
  const notes: string[] = [];
  if (opts.version !== undefined && (!Number.isInteger(opts.version) || opts.version < 1)) {
    throw new AuditError(`--version must be a positive integer (got ${opts.version})`);
  }
  let at: string | undefined;
  if (opts.at !== undefined) {
    const t = Date.parse(opts.at);
    if (!Number.isFinite(t)) throw new AuditError(`--at must be an ISO time such as 2026-03-01T12:00:00Z (got ${JSON.stringify(opts.at)})`);
    at = new Date(t).toISOString();
  }

  const versions = await allVersions(mlflow, model, opts.maxVersions ?? 1000);
  if (!versions.length) {
    try {
      await mlflow.getRegisteredModel(model);
    } catch (err) {
      if (isNotFound(err)) throw new AuditError(`MLflow has no registered model named ${JSON.stringify(model)}`);
      throw err;
    }
    throw new AuditError(`model ${model} has no versions in MLflow`);
  }
  const production = await mlflow.getVersionByAlias(model, ALIAS.production);

  // Lifecycles of the model, and the states of those that reached Production (their timelines date the changes).
  let rows: VisibilityRow[] = [];
  const states = new Map<number, LifecycleState>();
  const runs = new Map<number, LifecycleRun[]>();
  const allStates: LifecycleState[] = [];
  let visibilityRead = false;
  if (deps.lifecycles) {
    const reader = deps.lifecycles;
    try {
      rows = foldContinued(await reader.list(`WorkflowType = ${queryLiteral(LIFECYCLE_WORKFLOW, 'workflow type')} AND ModelName = ${queryLiteral(model, 'model name')}`));
      visibilityRead = true;
    } catch (err) {
      notes.push(`Temporal visibility could not be read (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); answers come from MLflow tags`);
    }
    const promoted = new Set<number>();
    for (const v of versions) if (v.tags[TAG.promotedAt]) promoted.add(v.version);
    for (const r of rows) {
      if (r.version !== undefined && (r.stage === 'Production' || r.outcome === 'superseded' || r.outcome === 'retired')) promoted.add(r.version);
    }
    if (opts.version !== undefined) promoted.add(opts.version);
    if (production) promoted.add(production.version);
    // Every run of each version when the reader can list them (a rollback is a new run), else its latest state.
    const read = await mapLimit([...promoted], 8, async (v) => {
      const list = reader.runs ? await reader.runs(model, v).catch(() => null) : null;
      // The newest run whose state can be read (a run no worker answers for falls back to the one before).
      if (list?.length) return [v, list, [...list].reverse().find((r) => r.state)?.state ?? null] as const;
      return [v, null, await reader.state(model, v)] as const;
    });
    for (const [v, list, s] of read) {
      if (list) runs.set(v, list);
      if (s) states.set(v, s);
      for (const r of list ?? []) if (r.state) allStates.push(r.state);
      if (!list && s) allStates.push(s);
    }
  }
  const intervals = productionIntervals(versions, allStates);

  // The subject: asked for, else serving at --at, else serving now.
  let subjectVersion: number;
  let reason: AuditReport['subject'];
  if (opts.version !== undefined) {
    subjectVersion = opts.version;
    reason = 'requested';
  } else if (at) {
    const v = productionAt(intervals, at);
    if (v === null) throw new AuditError(`no version of ${model} was in Production at ${at}`);
    subjectVersion = v;
    reason = 'production_at';
  } else {
    if (!production) throw new AuditError(`model ${model} has no Production version; pass --version N or --at <time>`);
    subjectVersion = production.version;
    reason = 'production';
  }
  // Read the version itself: search results do not carry aliases.
  let subject: ModelVersion;
  try {
    subject = await mlflow.getModelVersion(model, subjectVersion);
  } catch (err) {
    if (isNotFound(err)) throw new AuditError(`MLflow has no version ${subjectVersion} of model ${model}`);
    throw err;
  }

  const state = states.get(subjectVersion) ?? null;
  const workflowId = subject.tags[TAG.workflowId];
  if (!state && deps.lifecycles && workflowId) {
    const known = rows.some((r) => r.workflowId === workflowId) || (runs.get(subjectVersion)?.length ?? 0) > 0;
    notes.push(
      visibilityRead && !known
        ? `lifecycle ${workflowId} could not be read from Temporal: it has no record of it (deleted, or past the namespace's retention); answered from MLflow tags`
        : `lifecycle ${workflowId} could not be read from Temporal; approvals come from MLflow tags`,
    );
  }
  const run = await runOrNull(mlflow, subject.run_id);
  let storageUri: string | null = subject.tags[TAG.storageUri] ?? null;
  if (!storageUri) {
    try {
      storageUri = await mlflow.getDownloadUri(model, subjectVersion);
    } catch (err) {
      notes.push(`storage URI of version ${subjectVersion} could not be resolved: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  const prev = previousProductionVersion(subjectVersion, state, versions, intervals);
  let previous: Parameters<typeof buildAuditReport>[0]['previous'] = null;
  if (prev) {
    let prevRun: Run | null = null;
    if (prev.version !== null) {
      const pv = versions.find((v) => v.version === prev.version) ?? (await mlflow.getModelVersion(model, prev.version).catch(() => undefined));
      prevRun = await runOrNull(mlflow, pv?.run_id);
    }
    previous = { ...prev, run: prevRun };
  }

  let manifest: ServingFacts | null = null;
  if (deps.serving) {
    try {
      // null: the model is not deployed through GitOps (registry mode), so there is no manifest to compare.
      manifest = await deps.serving.describe(model);
    } catch (err) {
      notes.push(`the GitOps manifest could not be read: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  const row = rows.find((r) => r.version === subjectVersion);
  return buildAuditReport({
    model,
    generatedAt: (deps.now?.() ?? new Date()).toISOString(),
    subject,
    subjectReason: reason,
    run,
    storageUri,
    production,
    state,
    ...(row ? { lifecycleStatus: row.status } : {}),
    previous,
    intervals,
    ...(at ? { at } : {}),
    manifest,
    notes,
    runs: runs.get(subjectVersion) ?? [],
  });
}
