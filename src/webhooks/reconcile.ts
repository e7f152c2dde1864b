/**
 * MLflow delivers webhooks fire-and-forget (lost on its restart, a few retries at most), so every interval this
 * loop lists the recent versions of the policy-listed models and starts a lifecycle for each version that has
 * none. Starting is idempotent (workflow id from the business key), so racing a webhook is harmless. Bounded:
 * at most `maxVersions` per model and run, one run at a time; `stop()` ends it and waits for the run in flight.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { lifecycleHandle, startLifecycle } from '../client.js';
import type { MlflowRegistry } from '../mlflow/types.js';
import type { Logger } from '../observability/log.js';
import { reconcileRuns, reconcileStarted } from '../api/metrics.js';

export interface ReconcilerDeps {
  client: Client;
  mlflow: Pick<MlflowRegistry, 'searchModelVersions'>;
  /** The policy-listed models. */
  models: () => string[] | Promise<string[]>;
  logger: Logger;
  intervalMs: number;
  /** Versions created before now - lookbackMs are not looked at. */
  lookbackMs: number;
  maxVersions: number;
  taskQueue?: string;
}

export interface ReconcileResult {
  checked: number;
  started: Array<{ model: string; version: number }>;
  errors: string[];
}

export interface Reconciler {
  /** One pass now (also used by tests); concurrent calls share the pass in flight. */
  runOnce(): Promise<ReconcileResult>;
  stop(): Promise<void>;
}

/** MLflow filter strings quote with single quotes; backslash-escape quotes and backslashes in the name. */
function filterFor(model: string): string {
  return `name='${model.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

async function exists(client: Client, model: string, version: number): Promise<boolean> {
  try {
    await lifecycleHandle(client, model, version).describe();
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

export async function reconcileOnce(deps: Omit<ReconcilerDeps, 'intervalMs'>, signal?: AbortSignal): Promise<ReconcileResult> {
  const result: ReconcileResult = { checked: 0, started: [], errors: [] };
  const since = Date.now() - deps.lookbackMs;
  for (const model of await deps.models()) {
    if (signal?.aborted) break;
    try {
      const page = await deps.mlflow.searchModelVersions({
        filter: filterFor(model),
        maxResults: deps.maxVersions,
        orderBy: ['creation_timestamp DESC'],
      });
      for (const v of page.items.slice(0, deps.maxVersions)) {
        if (signal?.aborted) break;
        if (v.creation_timestamp < since) break;
        if (v.status === 'FAILED_REGISTRATION') continue;
        result.checked++;
        if (await exists(deps.client, model, v.version)) continue;
        await startLifecycle(deps.client, model, v.version, { source: 'reconciler' }, deps.taskQueue);
        result.started.push({ model, version: v.version });
        reconcileStarted.inc();
        deps.logger.info({ model, version: v.version }, 'reconcile: started a lifecycle no webhook had started');
      }
    } catch (err) {
      result.errors.push(`${model}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  return result;
}

export function startReconciler(deps: ReconcilerDeps): Reconciler {
  const abort = new AbortController();
  let inflight: Promise<ReconcileResult> | undefined;
  let timer: NodeJS.Timeout | undefined;

  const runOnce = (): Promise<ReconcileResult> => {
    if (inflight) return inflight;
    inflight = reconcileOnce(deps, abort.signal)
      .then((r) => {
        reconcileRuns.inc({ outcome: r.errors.length ? 'failed' : 'ok' });
        if (r.errors.length) deps.logger.warn({ errors: r.errors }, 'reconcile: some models could not be checked');
        return r;
      })
      .finally(() => {
        inflight = undefined;
      });
    return inflight;
  };

  const schedule = (): void => {
    if (abort.signal.aborted || deps.intervalMs <= 0) return;
    timer = setTimeout(() => {
      void runOnce()
        .catch((err: unknown) => deps.logger.error({ err }, 'reconcile: pass failed'))
        .finally(schedule);
    }, deps.intervalMs);
    timer.unref();
  };
  schedule();

  return {
    runOnce,
    async stop() {
      abort.abort();
      clearTimeout(timer);
      await inflight?.catch(() => undefined);
    },
  };
}
