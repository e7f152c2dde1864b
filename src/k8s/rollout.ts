/**
 * Pure judgements of a rollout from the objects the cluster reports — no I/O, so every rule is unit-tested
 * and the watching code only decides when to look again. A verdict is `waiting` whenever the cluster may
 * still get there (stale status, Ready flapping to Unknown, revision not yet ready); `failed` only for the
 * explicit failure signals KServe and ArgoCD publish. Everything else is left to the rollout deadline.
 */
import type { ArgoApplication, ComponentStatus, Condition, InferenceService } from './types.js';

export type Verdict =
  | { status: 'serving'; revision?: string }
  | { status: 'waiting'; why: string }
  | { status: 'failed'; reason: string };

export type DeploymentMode = 'Serverless' | 'RawDeployment';

export interface InferenceServiceExpectation {
  /** The storageUri the merged manifest sets (spec.predictor.model.storageUri). */
  storageUri: string;
  mode: DeploymentMode;
}

const waiting = (why: string): Verdict => ({ status: 'waiting', why });

export function judgeInferenceService(isvc: InferenceService | undefined, expect: InferenceServiceExpectation): Verdict {
  if (!isvc) return waiting('InferenceService not found');
  const specUri = isvc.spec?.predictor?.model?.storageUri;
  if (specUri !== expect.storageUri) {
    return waiting(`spec.predictor.model.storageUri is ${specUri ?? 'unset'}, expecting ${expect.storageUri} (change not applied yet)`);
  }
  const generation = isvc.metadata?.generation;
  const observed = isvc.status?.observedGeneration;
  // Status written for an older spec says nothing about this one — not even its failures.
  if (generation === undefined || observed !== generation) {
    return waiting(`status.observedGeneration ${observed ?? 'unset'} has not caught up with metadata.generation ${generation ?? 'unset'}`);
  }
  const failure = modelLoadFailure(isvc);
  if (failure) return { status: 'failed', reason: failure };

  const ready = findCondition(isvc.status?.conditions, 'Ready');
  if (!ready) return waiting('no Ready condition yet');
  // Unknown is what KServe reports mid-rollout (and flaps to); False is not final either: only the explicit
  // load-failure signals above fail, the deadline catches the rest.
  if (ready.status !== 'True') return waiting(`Ready is ${ready.status}${explain(ready)}`);

  if (expect.mode === 'RawDeployment') return { status: 'serving' };
  return judgeServerlessPredictor(isvc.status?.components?.predictor);
}

function judgeServerlessPredictor(predictor: ComponentStatus | undefined): Verdict {
  const created = predictor?.latestCreatedRevision;
  const readyRev = predictor?.latestReadyRevision;
  if (!created || !readyRev) return waiting('predictor has not reported latestCreatedRevision / latestReadyRevision');
  if (created !== readyRev) return waiting(`latest created revision ${created} is not ready (latest ready: ${readyRev})`);
  const percent = (predictor.traffic ?? [])
    .filter((t) => t.revisionName === readyRev)
    .reduce((sum, t) => sum + (t.percent ?? 0), 0);
  if (percent !== 100) return waiting(`revision ${readyRev} has ${percent}% of traffic, not 100%`);
  return { status: 'serving', revision: readyRev };
}

/** KServe's model-status signals that the new model will not load without a new spec. */
function modelLoadFailure(isvc: InferenceService): string | undefined {
  const ms = isvc.status?.modelStatus;
  if (!ms) return undefined;
  const transition = ms.transitionStatus;
  const active = ms.states?.activeModelState;
  const target = ms.states?.targetModelState;
  const blocked = transition === 'BlockedByFailedLoad' || transition === 'InvalidSpec';
  if (!blocked && active !== 'FailedToLoad' && target !== 'FailedToLoad') return undefined;
  const info = ms.lastFailureInfo;
  const parts = [
    `model failed to load (transitionStatus ${transition || 'unset'}, activeModelState ${active || 'unset'}${target ? `, targetModelState ${target}` : ''})`,
  ];
  if (info?.reason) parts.push(info.reason);
  if (info?.message) parts.push(info.message);
  return parts.join(': ');
}

export function findCondition(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

function explain(c: Condition): string {
  const text = [c.reason, c.message].filter(Boolean).join(': ');
  return text ? ` (${text})` : '';
}

/** The ArgoCD gate: the Application has synced and is healthy at exactly the merge commit. */
export function judgeArgoApplication(app: ArgoApplication | undefined, mergeSha: string): Verdict {
  if (!app) return waiting('ArgoCD Application not found');
  const st = app.status;
  const syncRevisions = [st?.sync?.revision, ...(st?.sync?.revisions ?? [])].filter((r): r is string => !!r);
  const atMerge = syncRevisions.includes(mergeSha);
  const op = st?.operationState;
  const opRevisions = [
    op?.syncResult?.revision,
    ...(op?.syncResult?.revisions ?? []),
    op?.operation?.sync?.revision,
    ...(op?.operation?.sync?.revisions ?? []),
  ].filter((r): r is string => !!r);
  const opForMerge = opRevisions.includes(mergeSha);
  const phase = op?.phase;

  if (opForMerge && (phase === 'Failed' || phase === 'Error')) {
    return { status: 'failed', reason: `ArgoCD sync of ${mergeSha} ended ${phase}${op?.message ? `: ${op.message}` : ''}` };
  }
  const health = st?.health?.status;
  if (atMerge && health === 'Degraded') {
    return {
      status: 'failed',
      reason: `ArgoCD Application is Degraded at ${mergeSha}${st?.health?.message ? `: ${st.health.message}` : ''}`,
    };
  }
  if (!atMerge) return waiting(`ArgoCD sync revision is ${syncRevisions[0] ?? 'unset'}, waiting for ${mergeSha}`);
  if (st?.sync?.status !== 'Synced') return waiting(`ArgoCD sync status is ${st?.sync?.status ?? 'unset'} at ${mergeSha}`);
  if (health !== 'Healthy') return waiting(`ArgoCD health is ${health ?? 'unset'} at ${mergeSha}`);
  // An operation recorded for another revision says nothing about this one.
  if (opRevisions.length > 0 && !opForMerge) return waiting(`last ArgoCD operation was for ${opRevisions[0]}, not ${mergeSha}`);
  if (phase !== 'Succeeded') return waiting(`ArgoCD operation phase is ${phase ?? 'unset'} for ${mergeSha}`);
  return { status: 'serving' };
}
