/**
 * The cluster side of a canary (issue #14): look at the InferenceService before any traffic moves (refuse a
 * RawDeployment one; learn which revision serves now, the `prev` of every split), then per step wait until
 * KServe reports the split the step set, and after a failed analysis until the previous revision serves all
 * the traffic again. Waits heartbeat their watch position, so a retry on another worker continues the same
 * wait against the same deadline (from `startedAt`, kept by the workflow).
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { K8sClient } from '../k8s/client.js';
import { describeCall, isK8sStatus } from '../k8s/errors.js';
import { canaryRefusal, deploymentModeOf, judgeCanaryRollback, judgeCanarySplit } from '../k8s/canary.js';
import type { Verdict } from '../k8s/rollout.js';
import { INFERENCE_SERVICES, type InferenceService } from '../k8s/types.js';
import { waitForObject } from '../k8s/wait.js';
import type { KservePolicy } from '../policy/types.js';
import { FailureTypes } from '../workflows/definitions.js';
import { KUBERNETES_FORBIDDEN, KUBERNETES_NOT_CONFIGURED } from './deploy.js';

export interface CanaryTargetInput {
  namespace: string;
  inferenceService: string;
  kserve: KservePolicy;
}

export interface CanaryTarget {
  /** Why no canary can run on it (RawDeployment, no such object); undefined: go ahead. */
  refusal?: string;
  mode?: string;
  /** The revision that serves all the traffic now: the `prev` the splits keep the rest on. */
  servingRevision?: string;
}

export interface WaitForCanaryInput {
  namespace: string;
  inferenceService: string;
  kserve: KservePolicy;
  /** The step's percent (100: the field removed); 0 with `rollback` waits for the previous revision at 100 %. */
  percent: number;
  storageUri: string;
  previousRevision?: string;
  rollback?: boolean;
  /** ISO; the deadline (kserve.rolloutDeadlineMs) counts from here across retries. */
  startedAt: string;
}

export type CanaryWaitResult =
  | { outcome: 'serving'; revision?: string; previousRevision?: string; observedAt: string }
  | { outcome: 'failed'; reason: string };

interface Checkpoint {
  resourceVersion?: string;
  why: string;
}

export interface CanaryK8sDeps {
  k8s: K8sClient | undefined;
  heartbeatIntervalMs?: number;
  watchTimeoutSeconds?: number;
}

export function createCanaryK8sActivities(deps: CanaryK8sDeps) {
  const heartbeatIntervalMs = deps.heartbeatIntervalMs ?? 2_000;

  function client(): K8sClient {
    if (!deps.k8s) {
      throw ApplicationFailure.create({
        type: KUBERNETES_NOT_CONFIGURED,
        nonRetryable: false,
        message: 'Kubernetes is not configured for this worker (MODELGATE_KUBECONFIG / MODELGATE_K8S_IN_CLUSTER)',
      });
    }
    return deps.k8s;
  }

  async function inspectCanaryTarget(input: CanaryTargetInput): Promise<CanaryTarget> {
    const byPolicy = canaryRefusal(undefined, input.kserve.deploymentMode);
    if (byPolicy) return { refusal: `policy kserve.deploymentMode: ${byPolicy}`, mode: input.kserve.deploymentMode };
    const isvc: InferenceService | undefined = await forbiddenAsFailure(() => client().get(INFERENCE_SERVICES, input.namespace, input.inferenceService));
    if (!isvc) return { refusal: `InferenceService ${input.namespace}/${input.inferenceService} does not exist: a canary needs a revision serving before it` };
    const refusal = canaryRefusal(isvc);
    const mode = deploymentModeOf(isvc) ?? 'Serverless';
    if (refusal) return { refusal: `${input.namespace}/${input.inferenceService}: ${refusal}`, mode };
    const p = isvc.status?.components?.predictor;
    const serving = p?.traffic?.find((t) => (t.percent ?? 0) === 100)?.revisionName ?? p?.latestRolledoutRevision ?? p?.latestReadyRevision;
    return { mode, ...(serving ? { servingRevision: serving } : {}) };
  }

  async function waitForCanary(input: WaitForCanaryInput): Promise<CanaryWaitResult> {
    if (!(input.kserve?.rolloutDeadlineMs > 0)) throw invalid('kserve.rolloutDeadlineMs must be > 0');
    if (Number.isNaN(Date.parse(input.startedAt))) throw invalid(`startedAt is not a date: ${input.startedAt}`);
    if (input.rollback && !input.previousRevision) throw invalid('a canary rollback wait needs previousRevision');
    const k8s = client();
    const ctx = Context.current();
    const prior = ctx.info.heartbeatDetails as Partial<Checkpoint> | undefined;
    const cp: Checkpoint = { resourceVersion: typeof prior?.resourceVersion === 'string' ? prior.resourceVersion : undefined, why: prior?.why ?? 'starting' };
    const beat = (): void => ctx.heartbeat({ ...cp });
    beat();
    const timer = setInterval(beat, heartbeatIntervalMs);
    const deadlineAt = Date.parse(input.startedAt) + input.kserve.rolloutDeadlineMs;
    let previousRevision: string | undefined;
    const judge = (o: unknown): Verdict => {
      const isvc = o as InferenceService | undefined;
      if (input.rollback) return judgeCanaryRollback(isvc, input.previousRevision!);
      const v = judgeCanarySplit(isvc, { percent: input.percent, storageUri: input.storageUri, previousRevision: input.previousRevision });
      if (v.status === 'refused') return { status: 'failed', reason: v.reason };
      if (v.status === 'serving') previousRevision = v.previousRevision;
      return v;
    };
    try {
      const r = await forbiddenAsFailure(() =>
        waitForObject({
          client: k8s,
          kind: INFERENCE_SERVICES,
          namespace: input.namespace,
          name: input.inferenceService,
          judge,
          deadlineAt,
          resume: cp,
          onProgress: (p) => {
            Object.assign(cp, p);
            beat();
          },
          signal: ctx.cancellationSignal,
          watchTimeoutSeconds: deps.watchTimeoutSeconds,
        }),
      );
      const what = input.rollback ? `rollback to ${input.previousRevision}` : `canary split at ${input.percent}%`;
      if (r.status === 'deadline') return { outcome: 'failed', reason: `${what}: deadline of ${input.kserve.rolloutDeadlineMs} ms (from ${input.startedAt}) passed; last seen: ${r.why}` };
      if (r.status === 'failed') return { outcome: 'failed', reason: `InferenceService ${input.namespace}/${input.inferenceService}: ${r.reason}` };
      return { outcome: 'serving', ...(r.revision ? { revision: r.revision } : {}), ...(previousRevision ? { previousRevision } : {}), observedAt: new Date().toISOString() };
    } finally {
      clearInterval(timer);
    }
  }

  return { inspectCanaryTarget, waitForCanary };
}

export type CanaryK8sActivities = ReturnType<typeof createCanaryK8sActivities>;

async function forbiddenAsFailure<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isK8sStatus(err, 403)) {
      throw ApplicationFailure.create({
        type: KUBERNETES_FORBIDDEN,
        nonRetryable: true,
        message: `Kubernetes RBAC denied ${describeCall(err.site)} (403 Forbidden): grant the worker's identity "${err.site.verb}" on ${err.site.resource} in namespace "${err.site.namespace}" (see deploy/kubernetes/rbac.yaml)`,
      });
    }
    throw err;
  }
}

function invalid(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: FailureTypes.InvalidInput, nonRetryable: true, message });
}
