/**
 * One upstream read sequence for the active version: the `production` alias, then the version's run and (only
 * when neither the lifecycle's tag nor a `runs:/` source gives it) the download URI, concurrently. No caching
 * here; the cache decides when to call it. Nothing here needs MLflow stages: what serves is the alias holder,
 * and its stage is the `modelgate.stage` tag where the registry has no stages (stageOf).
 */
import { parseRunsUri } from '../mlflow/client.js';
import { MlflowError } from '../mlflow/errors.js';
import { ALIAS, TAG } from '../mlflow/tags.js';
import { stageOf } from '../mlflow/stages.js';
import type { MlflowRegistry, Run } from '../mlflow/types.js';
import type { ActiveVersion } from './types.js';

/** The registry calls the endpoint needs. */
export type ActiveVersionSource = Pick<MlflowRegistry, 'getVersionByAlias' | 'getRun' | 'getDownloadUri'>;

export interface ReadOptions {
  /** Metrics to publish; default every metric of the run. */
  keyMetrics?: string[];
}

function isNotFound(err: unknown): boolean {
  return err instanceof MlflowError && (err.errorCode === 'RESOURCE_DOES_NOT_EXIST' || (err.status === 404 && err.errorCode === 'HTTP_ERROR'));
}

/** null when MLflow says the model has no Production version (no alias, or no such model). */
export async function readActiveVersion(mlflow: ActiveVersionSource, model: string, opts: ReadOptions = {}): Promise<ActiveVersion | null> {
  let v;
  try {
    v = await mlflow.getVersionByAlias(model, ALIAS.production);
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
  if (!v) return null;
  // The run and the storage URI are independent reads: do them at once. A `runs:/` source resolves against the
  // run's artifact_uri (what getDownloadUri would do with a second runs/get), so it costs no extra call.
  const tagged = v.tags[TAG.storageUri];
  const runsSource = parseRunsUri(v.source);
  const fromRun = !tagged && runsSource !== undefined && runsSource.runId === v.run_id;
  const [run, downloadUri] = await Promise.all([
    v.run_id ? readRun(mlflow, v.run_id) : Promise.resolve(undefined),
    tagged || fromRun ? Promise.resolve(undefined) : mlflow.getDownloadUri(model, v.version),
  ]);
  let storageUri = tagged || downloadUri;
  if (fromRun && run?.artifact_uri) {
    storageUri = runsSource.path ? `${run.artifact_uri.replace(/\/+$/, '')}/${runsSource.path}` : run.artifact_uri;
  }
  return {
    model,
    version: v.version,
    runId: v.run_id ?? null,
    storageUri: storageUri || null,
    stage: stageOf(v),
    aliases: [...v.aliases].sort(),
    metrics: pickMetrics(run?.metrics ?? {}, opts.keyMetrics),
    approvedBy: (v.tags[TAG.approvedBy] ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    approvedAt: v.tags[TAG.approvedAt] || null,
    pullRequest: v.tags[TAG.prUrl] || null,
    mergeSha: v.tags[TAG.mergeSha] || null,
    promotedAt: v.tags[TAG.promotedAt] || null,
    workflowId: v.tags[TAG.workflowId] || null,
  };
}

async function readRun(mlflow: ActiveVersionSource, runId: string): Promise<Run | undefined> {
  try {
    return await mlflow.getRun(runId);
  } catch (err) {
    // A deleted run must not take the endpoint down: the version is still what serves.
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Sorted keys: the ETag hashes the body, so the same metrics must always serialise the same way. */
function pickMetrics(all: Record<string, number>, keys: string[] | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of (keys ?? Object.keys(all)).slice().sort()) {
    const value = all[k];
    if (typeof value === 'number' && Number.isFinite(value)) out[k] = value;
  }
  return out;
}
