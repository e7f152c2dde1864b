/**
 * Deployment verification: after the promotion PR merges, wait until the cluster really serves the new
 * model (optionally: ArgoCD synced the merge commit; the InferenceService rolled out; the model server
 * answers ready), or report why not. Long-running and heartbeating: the heartbeat details are the
 * checkpoint (phase, resourceVersion, start time), so a retry on another worker continues the same wait
 * against the same deadline instead of starting over.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { KservePolicy } from '../policy/types.js';
import { FailureTypes } from '../workflows/definitions.js';
import type { K8sClient } from '../k8s/client.js';
import { describeCall, isK8sStatus } from '../k8s/errors.js';
import { judgeArgoApplication, judgeInferenceService, type Verdict } from '../k8s/rollout.js';
import { ARGO_APPLICATIONS, INFERENCE_SERVICES, type K8sObject } from '../k8s/types.js';
import { updateWithRetry } from '../k8s/update.js';
import { waitForObject, type WaitOutcome } from '../k8s/wait.js';
import { setTimeout as delay } from 'node:timers/promises';
import { observeRolloutDuration } from '../observability/metrics.js';

export const KUBERNETES_FORBIDDEN = 'KubernetesForbidden';
/** Retryable until the rollout deadline: configure the worker's cluster access and restart it (docs/kubernetes.md). */
export const KUBERNETES_NOT_CONFIGURED = 'KubernetesNotConfigured';

export interface WaitForRolloutInput {
  model: string;
  version: number;
  namespace: string;
  inferenceService: string;
  /** The storageUri the merged manifest sets. */
  storageUri: string;
  /** The merge commit; required when kserve.argocdApplication is set. */
  mergeSha?: string;
  kserve: KservePolicy;
  /** When the rollout started (ISO); the deadline counts from here. Default: first scheduling of the activity. */
  startedAt?: string;
}

export interface WaitForRollbackInput {
  namespace: string;
  inferenceService: string;
  /** The storageUri of the version that served before (what the revert restores). */
  storageUri: string;
  /** The revert's merge commit; with kserve.argocdApplication set the ArgoCD gate applies only when given. */
  mergeSha?: string;
  kserve: KservePolicy;
  startedAt?: string;
}

export interface WaitForRemovalInput {
  namespace: string;
  inferenceService: string;
  /** The retire's merge commit; with kserve.argocdApplication set the ArgoCD gate applies only when given. */
  mergeSha?: string;
  kserve: KservePolicy;
  startedAt?: string;
}

export type RolloutResult =
  | { outcome: 'serving'; revision?: string; observedAt: string }
  | { outcome: 'failed'; reason: string };

export interface DeployDeps {
  /** Undefined when the worker has no cluster configured: the activities then fail (retryably) saying so. */
  k8s: K8sClient | undefined;
  /** GET the readiness URL; true when the model answers ready. Default: fetch, 2xx = ready. */
  fetchReady?: (url: string, signal?: AbortSignal) => Promise<boolean>;
  /**
   * Annotate the ArgoCD Application with `argocd.argoproj.io/refresh: normal` before waiting, so ArgoCD
   * looks at git now instead of at its next poll. Needs `get` + `update` on applications (docs/kubernetes.md).
   */
  argocdRefresh?: boolean;
  /** How often the activity heartbeats while nothing changes. */
  heartbeatIntervalMs?: number;
  /** Pause between smoke requests that answered not-ready. */
  smokeIntervalMs?: number;
  /** Longest single watch request. */
  watchTimeoutSeconds?: number;
}

type Phase = 'argocd' | 'inferenceService' | 'smoke';

/** The heartbeat details: everything a retry needs to continue where the last attempt stopped. */
export interface RolloutCheckpoint {
  startedAt: string;
  phase: Phase;
  resourceVersion?: string;
  why: string;
  /** The serving revision, once the InferenceService phase passed (the smoke phase reports it). */
  revision?: string;
}

interface Target {
  label: 'rollout' | 'rollback' | 'removal';
  namespace: string;
  inferenceService: string;
  /** '' for a removal: the InferenceService is to be gone. */
  storageUri: string;
  mergeSha?: string;
  kserve: KservePolicy;
  startedAt?: string;
}

export function createDeployActivities(deps: DeployDeps) {
  const heartbeatIntervalMs = deps.heartbeatIntervalMs ?? 2_000;
  const smokeIntervalMs = deps.smokeIntervalMs ?? 2_000;
  const fetchReady = deps.fetchReady ?? defaultFetchReady;

  async function run(t: Target): Promise<RolloutResult> {
    const ctx = Context.current();
    const prior = readCheckpoint(ctx.info.heartbeatDetails);
    const gateArgo = !!t.kserve.argocdApplication && !!t.mergeSha;
    const startedAt = t.startedAt ?? prior?.startedAt ?? new Date(ctx.info.scheduledTimestampMs).toISOString();
    const deadlineAt = Date.parse(startedAt) + t.kserve.rolloutDeadlineMs;
    const k8s = deps.k8s;
    if (!k8s) {
      // Retryable on purpose: configuring the worker (docs/kubernetes.md) and restarting it lets the wait go on —
      // but only until the rollout's deadline, which then decides as it would for a rollout that never came up.
      const why = 'Kubernetes is not configured for this worker (MODELGATE_KUBECONFIG / MODELGATE_K8S_IN_CLUSTER)';
      if (Date.now() >= deadlineAt) {
        if (t.label === 'rollout') observeRolloutDuration(Date.now() - Date.parse(startedAt), 'timeout');
        return { outcome: 'failed', reason: `${t.label} deadline of ${t.kserve.rolloutDeadlineMs} ms (from ${startedAt}) passed: ${why}` };
      }
      throw ApplicationFailure.create({ type: KUBERNETES_NOT_CONFIGURED, nonRetryable: false, message: why });
    }
    const cp: RolloutCheckpoint = prior
      ? { ...prior, startedAt }
      : { startedAt, phase: gateArgo ? 'argocd' : 'inferenceService', why: 'starting' };
    const beat = (): void => ctx.heartbeat({ ...cp });
    beat();
    // Heartbeat on a timer too: a quiet watch is still a live activity.
    const timer = setInterval(beat, heartbeatIntervalMs);
    const signal = ctx.cancellationSignal;
    /** How this attempt ended, for the rollout-duration histogram (an attempt that throws is retried: none). */
    let ended: 'ready' | 'failed' | 'timeout' | undefined;
    const deadlineFailure = (): RolloutResult => {
      ended = 'timeout';
      return {
        outcome: 'failed',
        reason: `${t.label} deadline of ${t.kserve.rolloutDeadlineMs} ms (from ${startedAt}) passed; last seen: ${cp.why}`,
      };
    };
    const failed = (reason: string): RolloutResult => {
      ended = 'failed';
      return { outcome: 'failed', reason };
    };
    const advance = (phase: Phase, why: string): void => {
      Object.assign(cp, { phase, why, resourceVersion: undefined });
      beat();
    };
    const wait = (
      kind: typeof INFERENCE_SERVICES,
      namespace: string,
      name: string,
      judge: Parameters<typeof waitForObject>[0]['judge'],
    ): Promise<WaitOutcome> =>
      waitForObject({
        client: k8s,
        kind,
        namespace,
        name,
        judge,
        deadlineAt,
        resume: { resourceVersion: cp.resourceVersion, why: cp.why },
        onProgress: (p) => {
          cp.resourceVersion = p.resourceVersion;
          cp.why = p.why;
          beat();
        },
        signal,
        watchTimeoutSeconds: deps.watchTimeoutSeconds,
      });

    try {
      if (cp.phase === 'argocd') {
        const app = t.kserve.argocdApplication!;
        if (deps.argocdRefresh) await requestArgoRefresh(k8s, app.namespace, app.name);
        const r = await wait(ARGO_APPLICATIONS, app.namespace, app.name, (o) => judgeArgoApplication(o, t.mergeSha!));
        if (r.status === 'deadline') return deadlineFailure();
        if (r.status === 'failed') return failed(`${app.namespace}/${app.name}: ${r.reason}`);
        advance('inferenceService', `ArgoCD synced ${t.mergeSha}`);
      }
      if (cp.phase === 'inferenceService') {
        const mode = t.kserve.deploymentMode;
        const r = await wait(INFERENCE_SERVICES, t.namespace, t.inferenceService, (o) =>
          t.label === 'removal' ? judgeRemoved(o) : judgeInferenceService(o, { storageUri: t.storageUri, mode }),
        );
        if (r.status === 'deadline') return deadlineFailure();
        if (r.status === 'failed') return failed(`InferenceService ${t.namespace}/${t.inferenceService}: ${r.reason}`);
        if (t.label === 'removal') {
          ended = 'ready';
          return { outcome: 'serving', observedAt: new Date().toISOString() };
        }
        cp.revision = r.revision;
        advance('smoke', `InferenceService serves ${t.storageUri}${r.revision ? ` (revision ${r.revision})` : ''}`);
      }
      if (t.kserve.smokeUrl) {
        const url = `${t.kserve.smokeUrl.replace(/\/+$/, '')}/v2/models/${encodeURIComponent(t.inferenceService)}/ready`;
        for (;;) {
          if (signal.aborted) throw signal.reason ?? new Error('cancelled');
          const remaining = deadlineAt - Date.now();
          if (remaining <= 0) return deadlineFailure();
          let ready = false;
          try {
            ready = await fetchReady(url, AbortSignal.any([signal, AbortSignal.timeout(Math.min(remaining, 10_000))]));
            if (!ready) cp.why = `smoke GET ${url} did not answer ready`;
          } catch (err) {
            cp.why = `smoke GET ${url} failed: ${err instanceof Error ? err.message : String(err)}`;
          }
          if (ready) break;
          beat();
          await delay(Math.min(smokeIntervalMs, Math.max(0, deadlineAt - Date.now())), undefined, { signal }).catch(() => undefined);
        }
      }
      ended = 'ready';
      return { outcome: 'serving', revision: cp.revision, observedAt: new Date().toISOString() };
    } catch (err) {
      if (isK8sStatus(err, 403)) {
        throw ApplicationFailure.create({
          type: KUBERNETES_FORBIDDEN,
          nonRetryable: true,
          message:
            `Kubernetes RBAC denied ${describeCall(err.site)} (403 Forbidden): grant the worker's identity ` +
            `"${err.site.verb}" on ${err.site.resource} in namespace "${err.site.namespace}" (see deploy/kubernetes/rbac.yaml)`,
        });
      }
      throw err;
    } finally {
      clearInterval(timer);
      // From the rollout's start (kept across retries), so a resumed wait is not counted as a short one.
      if (ended && t.label === 'rollout') observeRolloutDuration(Date.now() - Date.parse(startedAt), ended);
    }
  }

  return {
    /** Wait until the merged version serves (ArgoCD gate, InferenceService rollout, smoke), or say why not. */
    async waitForRollout(input: WaitForRolloutInput): Promise<RolloutResult> {
      checkTarget(input);
      if (input.kserve.argocdApplication && !input.mergeSha) {
        throw invalid('mergeSha is required when kserve.argocdApplication is set (the ArgoCD gate compares it)');
      }
      return run({ label: 'rollout', ...input });
    },

    /** Wait until the previous version serves again after the revert merged. */
    async waitForRollback(input: WaitForRollbackInput): Promise<RolloutResult> {
      checkTarget(input);
      return run({ label: 'rollback', ...input });
    },

    /** Wait until the InferenceService is gone after a retire that removes it merged (`serving` = removed). */
    async waitForRemoval(input: WaitForRemovalInput): Promise<RolloutResult> {
      checkTarget({ ...input, storageUri: '(removal)' });
      return run({ label: 'removal', ...input, storageUri: '' });
    },
  };
}

export type DeployActivities = ReturnType<typeof createDeployActivities>;

/** A retire that removes the InferenceService: done once the cluster no longer has it. */
function judgeRemoved(o: K8sObject | undefined): Verdict {
  if (!o) return { status: 'serving' };
  return { status: 'waiting', why: o.metadata?.deletionTimestamp ? 'InferenceService is being deleted' : 'InferenceService still exists (removal not applied yet)' };
}

function invalid(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: FailureTypes.InvalidInput, nonRetryable: true, message });
}

function checkTarget(t: { namespace: string; inferenceService: string; storageUri: string; kserve: KservePolicy; startedAt?: string }): void {
  if (!t.namespace) throw invalid('namespace is empty');
  if (!t.inferenceService) throw invalid('inferenceService is empty');
  if (!t.storageUri) throw invalid('storageUri is empty');
  if (!(t.kserve?.rolloutDeadlineMs > 0)) throw invalid(`kserve.rolloutDeadlineMs must be > 0 (got ${t.kserve?.rolloutDeadlineMs})`);
  if (t.startedAt !== undefined && Number.isNaN(Date.parse(t.startedAt))) throw invalid(`startedAt is not a date: ${t.startedAt}`);
}

function readCheckpoint(details: unknown): RolloutCheckpoint | undefined {
  const d = details as Partial<RolloutCheckpoint> | undefined;
  if (!d || typeof d.startedAt !== 'string' || !['argocd', 'inferenceService', 'smoke'].includes(d.phase as string)) return undefined;
  return {
    startedAt: d.startedAt,
    phase: d.phase as Phase,
    resourceVersion: typeof d.resourceVersion === 'string' ? d.resourceVersion : undefined,
    why: typeof d.why === 'string' ? d.why : 'resumed',
    revision: typeof d.revision === 'string' ? d.revision : undefined,
  };
}

const REFRESH_ANNOTATION = 'argocd.argoproj.io/refresh';

/** Ask ArgoCD to compare with git now; the controller removes the annotation when it has refreshed. */
async function requestArgoRefresh(k8s: K8sClient, namespace: string, name: string): Promise<void> {
  await updateWithRetry(k8s, ARGO_APPLICATIONS, namespace, name, (app) => {
    const annotations = app.metadata?.annotations ?? {};
    if (annotations[REFRESH_ANNOTATION]) return undefined;
    return { ...app, metadata: { ...app.metadata, annotations: { ...annotations, [REFRESH_ANNOTATION]: 'normal' } } };
  });
}

async function defaultFetchReady(url: string, signal?: AbortSignal): Promise<boolean> {
  const res = await fetch(url, { signal });
  await res.body?.cancel();
  return res.ok;
}
