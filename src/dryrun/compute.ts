/**
 * "What would happen if I promoted this now?" — the lifecycle's own rules (evaluation gate, effective policy of
 * a rollback, approval rules, older-than-serving, manifest edit) applied to what MLflow, the GitOps base branch
 * and the version's lifecycle show right now, with no side effect: the clients it is given can only read
 * (MLflow GET, the provider's readFile, a Temporal describe/query), so a dry run can never start, signal,
 * tag, branch or merge anything.
 */
import type { IdentityRef } from '../identity/types.js';
import type { MlflowRegistry, ModelVersion } from '../mlflow/types.js';
import { MlflowError } from '../mlflow/errors.js';
import { readProductionHolders } from '../mlflow/production.js';
import { stageOf } from '../mlflow/stages.js';
import { TAG } from '../mlflow/tags.js';
import { evaluate, type EvaluationBaseline } from '../policy/evaluate.js';
import { NoPolicyError, parsePolicy, PolicyError, type PolicySet } from '../policy/load.js';
import type { GitopsPolicy, ModelPolicy } from '../policy/types.js';
import { applyServingFields, mapStorageUri, readServingFields } from '../gitops/manifest.js';
import { promotionTitle } from '../gitops/pr-text.js';
import type { GitopsProvider } from '../gitops/provider.js';
import { maskUrlCredentials } from '../util/url-credentials.js';
import { lifecycleWorkflowId, type LifecycleState, type PromotionRequest, type VersionFacts } from '../workflows/definitions.js';
import { currentRound, effectivePolicy, olderThanServing, registrantsOf, skipsEvaluation } from '../workflows/transitions.js';
import { unifiedDiff } from './diff.js';
import { approvalEligibility, quorumProgress, type EligibilityState } from './eligibility.js';
import { DryRunError } from './errors.js';
import { describeRollout } from './rollout.js';
import type { DryRun, DryRunInput, DryRunOutcome, DryRunReport } from './types.js';

/** Only reads: a client with write methods cannot be passed where this is asked for by accident of typing. */
export type DryRunRegistry = Pick<MlflowRegistry, 'getRegisteredModel' | 'getModelVersion' | 'searchModelVersions' | 'getRun' | 'getDownloadUri'>;

/** What the dry run may learn from Temporal: a describe and the state query, nothing that changes a workflow. */
export interface LifecycleView {
  status: 'running' | 'ended';
  /** The state query's answer; absent when it could not be asked (no worker answered in time). */
  state?: LifecycleState;
}

export interface DryRunDeps {
  mlflow: DryRunRegistry;
  /** The deployed policy file (undefined when it cannot be read). */
  policies: () => PolicySet | undefined;
  /** MLflow's server-side user → directory identity (the registrant under four-eyes). */
  identities?: { byMlflowUser(user: string): IdentityRef | undefined };
  /** Read-only view of the version's lifecycle; undefined = never started. */
  lifecycle?: (model: string, version: number) => Promise<LifecycleView | undefined>;
  /** The GitOps provider's read API only. */
  gitops?: { providerFor(policy: GitopsPolicy): Pick<GitopsProvider, 'readFile'> };
  /** Whether the registry serves stages (MODELGATE_REGISTRY_STAGES != off); default true. */
  stagesServed?: boolean;
  now?: () => Date;
}

/** Larger supplied policies are refused (the API's body limit is a little above, for the JSON around it). */
export const MAX_POLICY_BYTES = 64 * 1024;
export const SUPPLIED_POLICY_FILE = 'supplied policy';

export function createDryRun(deps: DryRunDeps): DryRun {
  return (input) => dryRun(deps, input);
}

async function dryRun(deps: DryRunDeps, input: DryRunInput): Promise<DryRunReport> {
  const { model, version } = input;
  if (typeof model !== 'string' || !model.trim() || model.length > 256) throw new DryRunError('invalid_input', 'model must be a non-empty name of at most 256 characters');
  if (!Number.isInteger(version) || version < 1 || version > 2_147_483_647) throw new DryRunError('invalid_input', 'version must be a positive integer');
  const notes: string[] = [];
  const blockers: string[] = [];

  // ---- policy: the deployed file, or the supplied text for this report only ----
  const supplied = input.policyYaml !== undefined;
  const set = supplied ? parseSupplied(input.policyYaml!) : deps.policies();
  if (!set) throw new DryRunError('not_configured', 'the deployed policy file cannot be read by the API (MODELGATE_POLICY_FILE)');
  let base: ModelPolicy;
  try {
    base = set.policyFor(model);
  } catch (err) {
    if (err instanceof NoPolicyError) throw new DryRunError('no_policy', err.message);
    throw err;
  }
  const source = set.models().includes(model) ? 'model' : 'defaults';
  if (source === 'defaults') notes.push(`${model} is not under models: in the ${supplied ? 'supplied' : 'deployed'} policy; it gets the defaults shown`);

  // ---- MLflow: the version, and what serves ----
  const holders = await mlflowRead(() => readProductionHolders(deps.mlflow, model, deps.stagesServed ?? true), `MLflow has no registered model named ${model}`);
  const mv = await mlflowRead(() => deps.mlflow.getModelVersion(model, version), `MLflow has no version ${version} of model ${model}`);
  const registrant = mv.user_id ? deps.identities?.byMlflowUser(mv.user_id)?.identity : undefined;
  const promotedBefore = mv.tags[TAG.promotedAt] || undefined;
  const facts: VersionFacts = {
    model, version, source: mv.source, status: mv.status, createdAt: new Date(mv.creation_timestamp).toISOString(),
    ...(mv.run_id ? { runId: mv.run_id } : {}),
    ...(mv.user_id ? { registeredBy: mv.user_id } : {}),
    ...(registrant ? { registrant } : {}),
    ...(promotedBefore ? { promotedBefore } : {}),
  };
  if (mv.status !== 'READY') notes.push(`MLflow says the version is ${mv.status}: the lifecycle waits until it is READY`);
  const serving = holders.serving;

  // ---- the lifecycle, read only ----
  let view: LifecycleView | undefined;
  try {
    view = await deps.lifecycle?.(model, version);
  } catch (err) {
    notes.push(`the lifecycle's state could not be read (${firstLine(err)}); the report assumes none is running`);
  }
  if (view && !view.state) notes.push('the lifecycle is known to Temporal but its state query was not answered; approvals so far are unknown');
  const running = view?.status === 'running' ? view.state : undefined;

  // ---- what kind of move it is ----
  let request: PromotionRequest | undefined;
  let move: DryRunReport['move'];
  let refused: DryRunOutcome | undefined;
  // olderThanServing reads only the version and the run's request kind (none: a plain promotion).
  const olderProbe = { model, version } as LifecycleState;
  const older = olderThanServing(olderProbe, serving);
  if (serving === version) {
    move = { kind: 'none', detail: `version ${version} serves already; nothing would change` };
    refused = 'already_serving';
  } else if (!older.ok) {
    if (promotedBefore) {
      request = { kind: 'rollback', reason: 'dry run' };
      move = { kind: 'rollback', detail: `version ${serving} serves and is newer: returning to ${version} is a rollback (modelgate rollback ${model} --to ${version} --reason …)` };
    } else {
      move = { kind: 'refused', detail: `${older.message}; and version ${version} was never in Production, so it is no rollback target either` };
      refused = 'not_promotable';
    }
  } else {
    move = { kind: 'promote', detail: serving === undefined ? 'no version serves now: it would be the first in Production' : `replaces version ${serving}, which serves now` };
    if (view?.status === 'ended') request = { kind: 'again', reason: 'dry run' };
  }
  if (refused) blockers.push(move.detail);
  const policy = effectivePolicy(base, request);
  if (running && supplied) {
    notes.push('the running lifecycle keeps the policy it recorded when it started; the supplied policy applies to runs started after it is deployed');
  }

  // ---- evaluation gate against what serves now ----
  const skipped = skipsEvaluation(policy, request);
  let result: DryRunReport['evaluation']['result'];
  if (!skipped && !refused) {
    const runId = mv.run_id;
    const candidate = runId ? await mlflowRead(() => deps.mlflow.getRun(runId), `the version's run ${runId} does not exist in MLflow`) : undefined;
    let baseline: EvaluationBaseline | undefined;
    if (serving !== undefined && serving !== version) {
      const sv = await mlflowRead(() => deps.mlflow.getModelVersion(model, serving), `MLflow has no version ${serving} of model ${model}`);
      const servingRun = sv.run_id;
      baseline = { version: serving, metrics: servingRun ? (await mlflowRead(() => deps.mlflow.getRun(servingRun), `run ${servingRun} does not exist`)).metrics : {} };
    }
    result = evaluate(policy.evaluation, { metrics: candidate?.metrics ?? {}, tags: candidate?.tags ?? {} }, baseline);
    if (!result.passed) {
      blockers.push(...result.reasons.map((r) => `evaluation: ${r}`));
      refused ??= 'rejected_by_evaluation';
    }
  }

  // ---- approvals ----
  const current = running && !request ? running : undefined;
  const registrants = current ? registrantsOf(current) : registrant ? [registrant] : [];
  // A running lifecycle decides under the policy it recorded at start; a supplied file shows what a new one would.
  const a = current?.policy && !supplied ? current.policy.approval : policy.approval;
  const fourEyesSatisfiable = !a.fourEyes || registrants.length > 0 || a.unknownRegistrant === 'allow';
  const round = current?.phase === 'awaiting_approval' ? currentRound(current) : undefined;
  const approvedBy = round !== undefined ? [...new Set(current!.approvals.filter((x) => (x.round ?? 1) === round).map((x) => x.by))] : [];
  const reapproval = reapprovalOf(request, view, current, a.quorum);
  if (!a.approvers.length) blockers.push('approval: the approver list is empty, nobody may approve (fail closed)');
  if (!fourEyesSatisfiable) blockers.push('approval: four-eyes cannot be satisfied: nobody knows who registered this version (MLflow user_id) and approval.fourEyes.unknownRegistrant is deny');
  if (!refused && (!a.approvers.length || !fourEyesSatisfiable)) refused = 'no_approver_possible';
  if (!current && !request) notes.push('whoever requests the promotion (modelgate promote) becomes a registrant too and, under four-eyes, may not approve it');

  let caller: DryRunReport['approval']['caller'];
  if (input.caller) {
    const state: EligibilityState = current
      ? current
      : { model, version, approvals: [], facts };
    caller = { identity: input.caller.identity, ...approvalEligibility(a, state, input.caller) };
  }

  const report: DryRunReport = {
    model,
    version,
    generatedAt: (deps.now?.() ?? new Date()).toISOString(),
    outcome: refused ?? 'would_await_approval',
    blockers,
    notes,
    policy: { source, file: supplied ? 'supplied' : 'deployed', fileName: set.file, effective: policy },
    candidate: {
      stage: stageOf(mv),
      status: mv.status,
      createdAt: facts.createdAt,
      ...(mv.run_id ? { runId: mv.run_id } : {}),
      ...(registrant ? { registrant } : {}),
      ...(promotedBefore ? { promotedBefore } : {}),
    },
    serving: serving !== undefined ? { version: serving, source: 'registry' } : { source: 'none' },
    move,
    evaluation: { skipped, ...(result ? { result } : {}) },
    approval: {
      approvers: a.approvers,
      quorum: a.quorum,
      fourEyes: a.fourEyes,
      expiresAfterMs: a.expiresAfterMs,
      registrants,
      fourEyesSatisfiable,
      approvedBy,
      ...(round !== undefined ? { round } : {}),
      reapproval,
      ...(caller ? { caller } : {}),
    },
    ...(view
      ? {
          lifecycle: {
            workflowId: lifecycleWorkflowId(model, version),
            status: view.status,
            ...(view.state ? { phase: view.state.phase } : {}),
            ...(view.state?.outcome ? { outcome: view.state.outcome } : {}),
          },
        }
      : {}),
    rollout: describeRollout(policy),
  };
  if (policy.deployment.mode === 'gitops' && policy.deployment.gitops) {
    report.gitops = await gitopsPreview(deps, supplied, policy.deployment.gitops, mv, model, version);
  }
  if (round !== undefined && approvedBy.length) notes.push(`quorum ${a.quorum}: ${quorumProgress(current!)}`);
  return report;
}

function parseSupplied(text: string): PolicySet {
  if (typeof text !== 'string' || !text.trim()) throw new DryRunError('invalid_policy', `${SUPPLIED_POLICY_FILE}: the policy text is empty`);
  if (Buffer.byteLength(text, 'utf8') > MAX_POLICY_BYTES) throw new DryRunError('invalid_policy', `${SUPPLIED_POLICY_FILE}: larger than ${MAX_POLICY_BYTES} bytes`);
  try {
    return parsePolicy(text, SUPPLIED_POLICY_FILE);
  } catch (err) {
    if (err instanceof PolicyError) throw new DryRunError('invalid_policy', err.message);
    throw err;
  }
}

function reapprovalOf(request: PromotionRequest | undefined, view: LifecycleView | undefined, current: LifecycleState | undefined, quorum: number): DryRunReport['approval']['reapproval'] {
  if (request?.kind === 'rollback') {
    return { needed: true, reason: `a rollback is a new run of the version's lifecycle: approvals start from none under the rollback rules (quorum ${quorum})` };
  }
  if (view?.status === 'ended') {
    return { needed: true, reason: `its lifecycle ended${view.state?.outcome ? ` (${view.state.outcome})` : ''}: promoting it again (--again --reason …) is a new run with a new approval round` };
  }
  if (current?.phase === 'awaiting_approval') {
    return { needed: false, reason: `approval round ${currentRound(current)} is open: ${quorumProgress(current)}` };
  }
  if (current) return { needed: false, reason: `the lifecycle is running (${current.phase.replace(/_/g, ' ')}); no new round` };
  return { needed: false, reason: 'no lifecycle yet: a promotion starts round 1 with no approvals' };
}

/** The PR the promotion would open: the base branch's manifest now, and the same edit the activity makes. */
async function gitopsPreview(
  deps: DryRunDeps,
  supplied: boolean,
  g: GitopsPolicy,
  mv: ModelVersion,
  model: string,
  version: number,
): Promise<NonNullable<DryRunReport['gitops']>> {
  const out: NonNullable<DryRunReport['gitops']> = {
    provider: g.provider, repo: g.repo, baseBranch: g.baseBranch, manifestPath: g.manifestPath, title: promotionTitle(model, version), proposedStorageUri: '', diff: '',
  };
  let storageUri: string;
  try {
    storageUri = mapStorageUri(await deps.mlflow.getDownloadUri(model, version), g.storageUriPrefixMap);
  } catch (err) {
    return { ...out, error: `the download location could not be read from MLflow: ${firstLine(err)}` };
  }
  out.proposedStorageUri = storageUri;
  if (storageUri.startsWith('models:/')) return { ...out, error: `KServe cannot download ${storageUri} (add a storageUriPrefixMap entry or fix the artifact store)` };
  // A supplied policy must not make the API read repositories the deployed one never deploys through.
  if (supplied && !deployedRepos(deps.policies()).has(`${g.provider}:${g.repo}`)) {
    return { ...out, error: `${g.provider} repository ${g.repo} is not one the deployed policy deploys through; a supplied policy cannot make modelgate read it (manifest not read)` };
  }
  if (!deps.gitops) return { ...out, error: 'GitOps is not configured on this API; the base branch manifest was not read' };
  try {
    const file = await deps.gitops.providerFor(g).readFile(g.manifestPath, g.baseBranch);
    if (!file) return { ...out, error: `${g.manifestPath} does not exist on ${g.baseBranch} of ${g.repo}` };
    const target = { namespace: g.namespace, name: g.inferenceService };
    const current = readServingFields(file.content, target, g.manifestPath);
    const next = applyServingFields(file.content, target, { storageUri, model, version: String(version), runId: mv.run_id || undefined }, g.manifestPath);
    return { ...out, ...(current.storageUri ? { currentStorageUri: current.storageUri } : {}), diff: unifiedDiff(file.content, next, g.manifestPath) };
  } catch (err) {
    return { ...out, error: firstLine(err) };
  }
}

/** `provider:repo` of every GitOps section the deployed policy resolves to (listed models and defaults). */
function deployedRepos(set: PolicySet | undefined): Set<string> {
  const out = new Set<string>();
  if (!set) return out;
  for (const m of [...set.models(), '\u0000defaults-probe']) {
    try {
      const g = set.policyFor(m).deployment.gitops;
      if (g) out.add(`${g.provider}:${g.repo}`);
    } catch {
      // No policy for the probe: the defaults are incomplete.
    }
  }
  return out;
}

async function mlflowRead<T>(fn: () => Promise<T>, missing: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof MlflowError && err.errorCode === 'RESOURCE_DOES_NOT_EXIST') throw new DryRunError('not_found', missing);
    if (err instanceof MlflowError) throw new DryRunError('unavailable', `MLflow could not be read: ${firstLine(err)}`);
    throw err;
  }
}

/** One line, URL credentials masked: messages go into the report and the API's answer. */
function firstLine(err: unknown): string {
  return maskUrlCredentials((err instanceof Error ? err.message : String(err)).split('\n')[0]);
}
