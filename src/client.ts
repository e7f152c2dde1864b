/**
 * Temporal client side of modelgate, shared by the CLI, the HTTP API, tests and benchmarks: connect, start a
 * lifecycle idempotently, send approvals/rejections as updates, read state. Errors that a person caused come
 * back as `ModelgateError` with a stable code and a one-line message.
 */
import {
  Client,
  Connection,
  ServiceError,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure, TypedSearchAttributes, WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/common';
import {
  approveUpdate,
  canaryAbortUpdate,
  canaryContinueUpdate,
  FailureTypes,
  LIFECYCLE_WORKFLOW,
  lifecycleWorkflowId,
  MODEL_NAME,
  MODEL_STAGE,
  MODEL_VERSION,
  refreshTrustUpdate,
  rejectUpdate,
  requestPromotionUpdate,
  retireUpdate,
  stateQuery,
  TASK_QUEUE,
  type LifecycleInput,
  type LifecycleState,
  type PromotionRequest,
  type TriggerSource,
} from './workflows/definitions.js';
import type { Attestation } from './identity/types.js';
import type { MlflowRegistry } from './mlflow/types.js';
import { ALIAS, TAG } from './mlflow/tags.js';
import { MlflowError } from './mlflow/errors.js';
import type { Unsigned } from './identity/signer.js';

export type ModelgateErrorCode =
  | 'not_found'
  | 'not_awaiting_approval'
  | 'unauthorized_approver'
  | 'self_approval'
  | 'duplicate_approval'
  | 'invalid_input'
  | 'unverified_decision'
  | 'stale_decision'
  | 'unknown_registrant'
  | 'unavailable'
  /** A rollback without --to, and the serving version replaced none (or nothing serves). */
  | 'no_rollback_target'
  /** A rollback to the version that serves already. */
  | 'already_serving'
  /** A rollback to a version that never was in Production (no modelgate.promoted_at tag). */
  | 'never_in_production'
  /** A rollback or a re-promotion without a reason. */
  | 'reason_required'
  /** A canary continue/abort while no canary of the version is paused. */
  | 'canary_not_paused'
  /** The workflow refused the rollback target (it checks again under the lock). */
  | 'not_a_rollback_target'
  /** A plain approval of a version older than the one serving: that is a rollback. */
  | 'older_than_serving';

export class ModelgateError extends Error {
  override name = 'ModelgateError';
  constructor(
    readonly code: ModelgateErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface ConnectOptions {
  address: string;
  namespace: string;
  apiKey?: string;
  tls?: boolean;
}

export async function connectClient(opts: ConnectOptions): Promise<Client> {
  const connection = await Connection.connect({
    address: opts.address,
    tls: opts.tls || undefined,
    apiKey: opts.apiKey,
    connectTimeout: 10_000,
  });
  return new Client({ connection, namespace: opts.namespace });
}

export function validateKey(model: string, version: number): void {
  if (typeof model !== 'string' || !model.trim() || model.length > 256) {
    throw new ModelgateError('invalid_input', `model name must be a non-empty string of at most 256 characters`);
  }
  if (!Number.isInteger(version) || version < 1) {
    throw new ModelgateError('invalid_input', `version must be a positive integer (got ${String(version)})`);
  }
}

export interface StartResult {
  workflowId: string;
  runId: string;
  /** false when a lifecycle for this version was already running and was returned instead. */
  started: boolean;
}

/**
 * Start the lifecycle of (model, version), or return the one already running. The workflow ID comes from the
 * business key, so concurrent starts (webhook + CLI + KubeFlow) converge on one execution.
 * A version's first run: a finished lifecycle is not restarted (REJECT_DUPLICATE), the version's story is over.
 * With `request` (again / rollback) a new run of the same workflow ID starts when the earlier one has closed
 * (ALLOW_DUPLICATE); one that is still running is found instead, never duplicated.
 */
export async function startLifecycle(
  client: Client,
  model: string,
  version: number,
  trigger: { source: TriggerSource; by?: string; attestation?: Attestation },
  taskQueue: string = TASK_QUEUE,
  request?: PromotionRequest,
): Promise<StartResult> {
  validateKey(model, version);
  if (request) requireReason(request.reason, request.kind === 'rollback' ? 'a rollback' : 'a re-promotion');
  const workflowId = lifecycleWorkflowId(model, version);
  const input: LifecycleInput = { model, version, trigger, ...(request ? { request } : {}) };
  const what = request?.kind === 'rollback' ? 'rollback' : request?.kind === 'again' ? 're-promotion' : 'promotion lifecycle';
  try {
    const handle = await client.workflow.start(LIFECYCLE_WORKFLOW, {
      taskQueue,
      workflowId,
      args: [input],
      // FAIL, not USE_EXISTING: the server then says exactly whether this call created the execution, and a
      // concurrent second start (webhook + CLI + KubeFlow) lands in the catch below and finds the first.
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      workflowIdReusePolicy: request ? WorkflowIdReusePolicy.ALLOW_DUPLICATE : WorkflowIdReusePolicy.REJECT_DUPLICATE,
      typedSearchAttributes: new TypedSearchAttributes([
        { key: MODEL_NAME, value: model },
        { key: MODEL_VERSION, value: version },
        { key: MODEL_STAGE, value: 'None' },
      ]),
      staticSummary: `${model} v${version}: ${what}`,
      staticDetails:
        `Started by ${trigger.source}${trigger.by ? ` (${trigger.by})` : ''}. MLflow model **${model}** version **${version}**.` +
        (request ? ` ${request.kind === 'rollback' ? 'Rollback' : 'Promoted again'}: ${request.reason}` : ''),
    });
    return { workflowId, runId: handle.firstExecutionRunId, started: true };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      const desc = await client.workflow.getHandle(workflowId).describe();
      return { workflowId, runId: desc.runId, started: false };
    }
    throw err;
  }
}

/** The reason of a rollback or re-promotion: required, one line, at most 1000 characters. */
export function requireReason(reason: string | undefined, what: string): string {
  const r = typeof reason === 'string' ? reason.trim() : '';
  if (!r) throw new ModelgateError('reason_required', `${what} needs a reason (--reason <text>, or "reason" in the body)`);
  if (r.length > 1000) throw new ModelgateError('invalid_input', `reason must be at most 1000 characters (got ${r.length})`);
  return r;
}

/** How long one state query may take, and how many are sent, before the caller is told Temporal did not answer. */
export interface StateQueryOptions {
  attemptMs?: number;
  attempts?: number;
}
const STATE_QUERY_DEFAULTS = { attemptMs: 10_000, attempts: 4 };

/**
 * The state query, each attempt under its own deadline, retried on CANCELLED/DEADLINE_EXCEEDED/UNAVAILABLE.
 * Why the deadline: a query task can be lost on the worker side (handed to a worker that died, before the sticky
 * timeout hands it back; or dropped by the SDK when it evicts the run the query was buffered behind), and the
 * server then answers only when its own 30 s query timeout ends. Asked again, a live worker answers at once.
 */
export async function stateOf(handle: WorkflowHandle, opts: StateQueryOptions = {}): Promise<LifecycleState> {
  const { attemptMs, attempts } = { ...STATE_QUERY_DEFAULTS, ...opts };
  for (let attempt = 1; ; attempt++) {
    try {
      return await handle.client.withDeadline(Date.now() + attemptMs, () => handle.query(stateQuery));
    } catch (err) {
      const code = (err as { cause?: { code?: number } }).cause?.code;
      if (!(err instanceof ServiceError) || ![1, 4, 14].includes(code ?? -1) || attempt >= attempts) throw err;
      await new Promise((r) => setTimeout(r, 250 * 2 ** (attempt - 1)));
    }
  }
}

export function lifecycleHandle(client: Client, model: string, version: number): WorkflowHandle {
  validateKey(model, version);
  return client.workflow.getHandle(lifecycleWorkflowId(model, version));
}

export async function getState(client: Client, model: string, version: number): Promise<LifecycleState> {
  try {
    return await stateOf(lifecycleHandle(client, model, version));
  } catch (err) {
    throw await mapError(client, err, model, version);
  }
}

/** Signs a decision as a front door does; without one, decisions are sent bare (refused unless the policy allows). */
export type Sign = (claims: Unsigned) => Attestation;

export interface DecisionBy {
  by: string;
  /** The identity's directory groups (policies may name `group:<name>`). */
  groups?: string[];
  /** api, cli, slack, ui … */
  via?: string;
  comment?: string;
  reason?: string;
}

const decisionUpdates = {
  approve: approveUpdate,
  reject: rejectUpdate,
  retire: retireUpdate,
  'canary-continue': canaryContinueUpdate,
  'canary-abort': canaryAbortUpdate,
} as const;

/**
 * One decision as the workflow wants it: read the current approval round and PR head, sign exactly that, and
 * send it as an update whose id is the business key (kind, person, round), so a double click is one update and
 * a new round is a new decision.
 */
export async function decide(
  client: Client,
  kind: keyof typeof decisionUpdates,
  model: string,
  version: number,
  input: DecisionBy,
  sign?: Sign,
): Promise<LifecycleState> {
  const handle = lifecycleHandle(client, model, version);
  const attempt = async (): Promise<LifecycleState> => {
    const s = await stateOf(handle);
    const canary = kind === 'canary-continue' || kind === 'canary-abort';
    // A canary decision names the pause it was made for (the workflow refuses it for any other pause).
    const round = canary ? (s.canary?.pause?.id ?? 0) : (s.approvalRound ?? 1);
    const channel = input.via ?? 'api';
    const text = { ...(input.comment !== undefined ? { comment: input.comment } : {}), ...(input.reason !== undefined ? { reason: input.reason } : {}) };
    const body = sign
      ? {
          attestation: sign({
            kind, model, version, identity: input.by, groups: input.groups ?? [], channel,
            ...(kind === 'retire' ? {} : { round }),
            ...(s.pullRequest?.headSha ? { headSha: s.pullRequest.headSha } : {}),
            ...text,
          }),
        }
      : { by: input.by, via: channel, ...text };
    // A failed GitOps retire may be asked again by the same person: its id names the attempt, like rounds do.
    const updateId =
      kind === 'retire' ? `retire:${input.by}:a${(s.retirement?.attempt ?? 0) + 1}` : canary ? `${kind}:${input.by}:p${round}` : `${kind}:${input.by}:r${round}`;
    return handle.executeUpdate(decisionUpdates[kind], { args: [body], updateId });
  };
  return signed(client, handle, model, version, attempt, !!sign);
}

/**
 * Sends a signed update; a refusal for a key id the lifecycle has not loaded yet reloads its keys from the worker
 * and sends once more. Errors come back as ModelgateError.
 */
async function signed<T>(client: Client, handle: WorkflowHandle, model: string, version: number, send: () => Promise<T>, retry = true): Promise<T> {
  try {
    try {
      return await send();
    } catch (err) {
      if (!retry || failureType(err) !== FailureTypes.UntrustedKey) throw err;
      await handle.executeUpdate(refreshTrustUpdate, { args: [] });
      return await send();
    }
  } catch (err) {
    throw await mapError(client, err, model, version);
  }
}

/**
 * Tell a lifecycle that was already running who asked for its promotion (attested): its requester becomes a
 * registrant under four-eyes. Reloads the lifecycle's keys once if they predate the signing key.
 */
export async function requestPromotion(client: Client, model: string, version: number, attestation: Attestation): Promise<LifecycleState> {
  const handle = lifecycleHandle(client, model, version);
  return signed(client, handle, model, version, () => handle.executeUpdate(requestPromotionUpdate, { args: [{ attestation }] }));
}

/** Continue a paused canary (its analysis starts anew at the same step), or abort it (back to the previous version). */
export async function decideCanary(client: Client, decision: 'continue' | 'abort', model: string, version: number, input: DecisionBy, sign?: Sign): Promise<LifecycleState> {
  return decide(client, decision === 'continue' ? 'canary-continue' : 'canary-abort', model, version, input, sign);
}

export async function approve(client: Client, model: string, version: number, input: DecisionBy, sign?: Sign): Promise<LifecycleState> {
  return decide(client, 'approve', model, version, input, sign);
}

export async function reject(client: Client, model: string, version: number, input: DecisionBy & { reason: string }, sign?: Sign): Promise<LifecycleState> {
  return decide(client, 'reject', model, version, input, sign);
}

export async function retire(client: Client, model: string, version: number, input: DecisionBy, sign?: Sign): Promise<LifecycleState> {
  return decide(client, 'retire', model, version, input, sign);
}

function failureType(err: unknown): string | undefined {
  const cause = err instanceof WorkflowUpdateFailedError ? err.cause : err;
  return cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined;
}

const codeByFailureType: Record<string, ModelgateErrorCode> = {
  [FailureTypes.NotAwaitingApproval]: 'not_awaiting_approval',
  [FailureTypes.UnauthorizedApprover]: 'unauthorized_approver',
  [FailureTypes.SelfApproval]: 'self_approval',
  [FailureTypes.DuplicateApproval]: 'duplicate_approval',
  [FailureTypes.InvalidInput]: 'invalid_input',
  [FailureTypes.UnverifiedDecision]: 'unverified_decision',
  [FailureTypes.UntrustedKey]: 'unverified_decision',
  [FailureTypes.StaleDecision]: 'stale_decision',
  [FailureTypes.UnknownRegistrant]: 'unknown_registrant',
  [FailureTypes.NotARollbackTarget]: 'not_a_rollback_target',
  [FailureTypes.OlderThanServing]: 'older_than_serving',
  [FailureTypes.CanaryNotPaused]: 'canary_not_paused',
};

/** Turn SDK errors into ModelgateError with a one-line message; anything unexpected is returned as is. */
export async function mapError(client: Client, err: unknown, model: string, version: number): Promise<unknown> {
  if (err instanceof WorkflowNotFoundError) {
    // Updates to a closed execution also answer "not found": tell a finished lifecycle from a missing one.
    const desc = await lifecycleHandle(client, model, version).describe().catch(() => undefined);
    if (desc) {
      const outcome = desc.searchAttributes.ModelgateOutcome?.[0];
      return new ModelgateError(
        'not_awaiting_approval',
        `${model} version ${version} is not awaiting approval: its lifecycle ended${outcome ? ` (${String(outcome)})` : ` (${desc.status.name.toLowerCase()})`}`,
      );
    }
    return new ModelgateError('not_found', `no lifecycle for ${model} version ${version} (start it with \`modelgate promote ${model} ${version}\`)`);
  }
  const cause = err instanceof WorkflowUpdateFailedError ? err.cause : err;
  if (cause instanceof ApplicationFailure && cause.type && codeByFailureType[cause.type]) {
    return new ModelgateError(codeByFailureType[cause.type], cause.message);
  }
  if (err instanceof Error && /workflow execution already completed/i.test(err.message)) {
    return new ModelgateError('not_awaiting_approval', `${model} version ${version}: its lifecycle has already finished`);
  }
  return err;
}

// ---- rollback: a new run of an earlier Production version's lifecycle ----

/** What resolving a rollback target reads from MLflow. */
export type RollbackRegistry = Pick<MlflowRegistry, 'getVersionByAlias' | 'getModelVersion'>;

export interface RollbackTarget {
  model: string;
  /** The version to return to Production. */
  version: number;
  /** The version serving now (the `production` alias holder), null when none. */
  serving: number | null;
  /** Where the target came from: `--to`, the serving lifecycle's state, or the serving version's MLflow tag. */
  source: 'requested' | 'workflow' | 'mlflow-tags';
}

const isMissing = (err: unknown) => err instanceof MlflowError && err.errorCode === 'RESOURCE_DOES_NOT_EXIST';
/** MLflow failing says nothing about the request: a retryable `unavailable`, its message without the URL's secrets. */
const unreachable = (err: unknown) => (err instanceof MlflowError ? new ModelgateError('unavailable', `MLflow could not be read: ${err.message.split('\n')[0]}`) : err);

/** The version the serving one replaced: its lifecycle's record, else the tag the registry wrote. */
async function replacedBy(client: Client, model: string, serving: { version: number; tags: Record<string, string> }): Promise<{ version: number; source: 'workflow' | 'mlflow-tags' } | null> {
  const state = await stateOf(lifecycleHandle(client, model, serving.version), { attemptMs: 5_000, attempts: 1 }).catch(() => undefined);
  if (state?.previousProductionVersion !== undefined) return { version: state.previousProductionVersion, source: 'workflow' };
  const tag = serving.tags[TAG.previousVersion];
  if (tag && /^[1-9]\d*$/.test(tag)) return { version: Number(tag), source: 'mlflow-tags' };
  return null;
}

/**
 * The version a rollback returns to Production: `to`, or else the version the serving one replaced. Refused
 * (ModelgateError) when there is none, when it serves already, or when it never was in Production.
 */
export async function resolveRollbackTarget(client: Client, mlflow: RollbackRegistry, model: string, to?: number): Promise<RollbackTarget> {
  validateKey(model, to ?? 1);
  const serving = await mlflow.getVersionByAlias(model, ALIAS.production).catch((err: unknown) => {
    throw isMissing(err) ? new ModelgateError('not_found', `MLflow has no registered model named ${model}`) : unreachable(err);
  });
  let target: { version: number; source: RollbackTarget['source'] };
  if (to !== undefined) {
    target = { version: to, source: 'requested' };
  } else {
    if (!serving) throw new ModelgateError('no_rollback_target', `${model} has no Production version, so there is nothing it replaced; name the version with --to <version>`);
    const prev = await replacedBy(client, model, serving);
    if (!prev) throw new ModelgateError('no_rollback_target', `${model} version ${serving.version} serves and replaced no earlier version; name the version with --to <version>`);
    target = prev;
  }
  if (serving && serving.version === target.version) {
    throw new ModelgateError('already_serving', `${model} version ${target.version} is the version serving now; nothing to roll back to`);
  }
  let mv;
  try {
    mv = await mlflow.getModelVersion(model, target.version);
  } catch (err) {
    if (isMissing(err)) throw new ModelgateError('not_found', `MLflow has no version ${target.version} of model ${model}`);
    throw unreachable(err);
  }
  if (!mv.tags[TAG.promotedAt]) {
    throw new ModelgateError('never_in_production', `${model} version ${target.version} was never in Production (no ${TAG.promotedAt} tag); promote it instead of rolling back to it`);
  }
  return { model, version: target.version, serving: serving?.version ?? null, source: target.source };
}

export interface RollbackInput {
  /** The version to return to; default: the one the serving version replaced. */
  to?: number;
  reason: string;
  /** The requester (a directory identity) and its groups, as the front door authenticated them. */
  by: string;
  groups?: string[];
  /** api, cli, slack … */
  via?: string;
}

export interface RollbackResult extends StartResult {
  model: string;
  version: number;
  /** The version serving when the rollback was asked for. */
  from: number | null;
  targetSource: RollbackTarget['source'];
}

/**
 * Ask for a rollback: resolve the target, sign a `rollback` request (the reason inside), and start a new run of
 * the target's lifecycle with `request: { kind: 'rollback' }`. It then waits for approvals like any promotion
 * (the policy's `rollback:` section). A run of the target that is still going is found (`started: false`).
 */
export async function rollback(client: Client, mlflow: RollbackRegistry, model: string, input: RollbackInput, sign?: Sign, taskQueue: string = TASK_QUEUE): Promise<RollbackResult> {
  const reason = requireReason(input.reason, 'a rollback');
  const target = await resolveRollbackTarget(client, mlflow, model, input.to);
  const channel = input.via ?? 'api';
  const attestation = sign?.({ kind: 'rollback', model, version: target.version, identity: input.by, groups: input.groups ?? [], channel, reason });
  const source: TriggerSource = channel === 'cli' ? 'cli' : 'api';
  const r = await startLifecycle(
    client, model, target.version,
    { source, by: input.by, ...(attestation ? { attestation } : {}) },
    taskQueue,
    { kind: 'rollback', reason },
  );
  return { ...r, model, version: target.version, from: target.serving, targetSource: target.source };
}
