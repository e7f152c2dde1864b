/**
 * Pure judgement of a KServe canary traffic split (Serverless mode, `spec.predictor.canaryTrafficPercent`),
 * in the style of rollout.ts: `waiting` while the controller may still get there, `failed` only on KServe's
 * explicit load-failure signals, `serving` once the status shows exactly the split the step asked for.
 *
 * KServe's split: the latest revision (tag `latest`) gets `canaryTrafficPercent`, the previously rolled-out
 * revision (tag `prev`) the rest; at 100 % (field removed) the latest revision takes all the traffic, at 0 % the
 * previous one does. RawDeployment ignores the field altogether, so a canary there is refused up front.
 */
import { judgeInferenceService, type Verdict } from './rollout.js';
import type { InferenceService, TrafficTarget } from './types.js';

export const DEPLOYMENT_MODE_ANNOTATION = 'serving.kserve.io/deploymentMode';

export interface CanarySplitExpectation {
  /** The traffic percent of the latest (canary) revision this step set: 0…100. */
  percent: number;
  /** The storageUri the manifest sets (the canaried version's). */
  storageUri: string;
  /** The revision that served before the canary (tag `prev`); when known, the rest of the traffic must be on it. */
  previousRevision?: string;
}

export type CanaryVerdict =
  | { status: 'serving'; revision: string; previousRevision?: string }
  | { status: 'waiting'; why: string }
  | { status: 'failed'; reason: string }
  | { status: 'refused'; reason: string };

/** The deployment mode KServe uses for this object: the status when reported, else the annotation. */
export function deploymentModeOf(isvc: InferenceService | undefined): string | undefined {
  const fromStatus = isvc?.status?.deploymentMode;
  if (typeof fromStatus === 'string' && fromStatus !== '') return fromStatus;
  return isvc?.metadata?.annotations?.[DEPLOYMENT_MODE_ANNOTATION];
}

/** Why a canary cannot run on this InferenceService, or undefined when it can. */
export function canaryRefusal(isvc: InferenceService | undefined, policyMode?: string): string | undefined {
  const mode = deploymentModeOf(isvc) ?? policyMode;
  if (mode === 'RawDeployment' || mode === 'ModelMesh') {
    return `InferenceService is in ${mode} mode, which ignores spec.predictor.canaryTrafficPercent: remove deployment.canary from the policy or run it Serverless`;
  }
  return undefined;
}

export function judgeCanarySplit(isvc: InferenceService | undefined, expect: CanarySplitExpectation): CanaryVerdict {
  if (!Number.isInteger(expect.percent) || expect.percent < 0 || expect.percent > 100) {
    return { status: 'refused', reason: `canary percent ${expect.percent} is not an integer in 0…100` };
  }
  if (!isvc) return { status: 'waiting', why: 'InferenceService not found' };
  const refusal = canaryRefusal(isvc);
  if (refusal) return { status: 'refused', reason: refusal };

  const specPercent = isvc.spec?.predictor?.canaryTrafficPercent;
  const wantSpec = expect.percent === 100 ? undefined : expect.percent;
  if (specPercent !== wantSpec) {
    return {
      status: 'waiting',
      why: `spec.predictor.canaryTrafficPercent is ${specPercent ?? 'unset'}, expecting ${wantSpec ?? 'unset'} (step not applied yet)`,
    };
  }
  // Storage URI, observedGeneration, load failures and Ready: the same rules as a plain rollout.
  const base = judgeInferenceService(isvc, { storageUri: expect.storageUri, mode: 'Serverless' });
  if (base.status === 'failed') return base;
  if (base.status === 'waiting' && !base.why.startsWith('revision ')) return base;

  const predictor = isvc.status?.components?.predictor;
  const latest = predictor?.latestCreatedRevision;
  if (!latest || latest !== predictor?.latestReadyRevision) {
    return { status: 'waiting', why: `latest created revision ${latest ?? 'unset'} is not ready (latest ready: ${predictor?.latestReadyRevision ?? 'unset'})` };
  }
  const traffic = predictor.traffic ?? [];
  const onLatest = sumFor(traffic, (t) => t.revisionName === latest);
  const others = traffic.filter((t) => t.revisionName !== latest && (t.percent ?? 0) > 0);
  const onOthers = sumFor(others, () => true);
  if (onLatest !== expect.percent) return { status: 'waiting', why: `revision ${latest} has ${onLatest}% of traffic, expecting ${expect.percent}%` };
  if (onLatest + onOthers !== 100) return { status: 'waiting', why: `traffic entries add up to ${onLatest + onOthers}%, not 100%` };
  if (expect.percent < 100) {
    const prev = expect.previousRevision ?? predictor.previousRolledoutRevision ?? others[0]?.revisionName;
    const wrong = others.find((t) => t.revisionName !== prev);
    if (!prev || wrong) {
      return { status: 'waiting', why: `the remaining ${100 - onLatest}% is on ${wrong?.revisionName ?? 'no revision'}, expecting the previous revision ${prev ?? '(unknown)'}` };
    }
    return { status: 'serving', revision: latest, previousRevision: prev };
  }
  return { status: 'serving', revision: latest };
}

/**
 * After a failed analysis (`canaryTrafficPercent: 0`): the previous revision serves all the traffic again and
 * the status is current. The latest revision may stay ready (KServe keeps it, tagged `latest`, at 0 %).
 */
export function judgeCanaryRollback(isvc: InferenceService | undefined, previousRevision: string): Verdict {
  if (!isvc) return { status: 'waiting', why: 'InferenceService not found' };
  const generation = isvc.metadata?.generation;
  if (generation === undefined || isvc.status?.observedGeneration !== generation) {
    return { status: 'waiting', why: `status.observedGeneration ${isvc.status?.observedGeneration ?? 'unset'} has not caught up with metadata.generation ${generation ?? 'unset'}` };
  }
  if (isvc.spec?.predictor?.canaryTrafficPercent !== 0) {
    return { status: 'waiting', why: `spec.predictor.canaryTrafficPercent is ${isvc.spec?.predictor?.canaryTrafficPercent ?? 'unset'}, expecting 0` };
  }
  const traffic = isvc.status?.components?.predictor?.traffic ?? [];
  const onPrev = sumFor(traffic, (t) => t.revisionName === previousRevision);
  const onOthers = sumFor(traffic, (t) => t.revisionName !== previousRevision);
  if (onPrev !== 100 || onOthers !== 0) return { status: 'waiting', why: `previous revision ${previousRevision} has ${onPrev}% of traffic, not 100%` };
  return { status: 'serving', revision: previousRevision };
}

function sumFor(traffic: TrafficTarget[], pick: (t: TrafficTarget) => boolean): number {
  return traffic.filter(pick).reduce((sum, t) => sum + (t.percent ?? 0), 0);
}
