/**
 * Temporal client side of modelgate, shared by the CLI, the HTTP API, tests and benchmarks: connect, start a
 * lifecycle idempotently, send approvals/rejections as updates, read state. Errors that a person caused come
 * back as `ModelgateError` with a stable code and a one-line message.
 */
import {
  Client,
  Connection,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure, TypedSearchAttributes, WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/common';
import {
  approveUpdate,
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
  type TriggerSource,
} from './workflows/definitions.js';
import type { Attestation } from './identity/types.js';
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
  | 'unavailable';

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
 * A finished lifecycle is not restarted (REJECT_DUPLICATE): the version's story is over.
 */
export async function startLifecycle(
  client: Client,
  model: string,
  version: number,
  trigger: { source: TriggerSource; by?: string; attestation?: Attestation },
  taskQueue: string = TASK_QUEUE,
): Promise<StartResult> {
  validateKey(model, version);
  const workflowId = lifecycleWorkflowId(model, version);
  const input: LifecycleInput = { model, version, trigger };
  try {
    const handle = await client.workflow.start(LIFECYCLE_WORKFLOW, {
      taskQueue,
      workflowId,
      args: [input],
      // FAIL, not USE_EXISTING: the server then says exactly whether this call created the execution, and a
      // concurrent second start (webhook + CLI + KubeFlow) lands in the catch below and finds the first.
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      typedSearchAttributes: new TypedSearchAttributes([
        { key: MODEL_NAME, value: model },
        { key: MODEL_VERSION, value: version },
        { key: MODEL_STAGE, value: 'None' },
      ]),
      staticSummary: `${model} v${version}: promotion lifecycle`,
      staticDetails: `Started by ${trigger.source}${trigger.by ? ` (${trigger.by})` : ''}. MLflow model **${model}** version **${version}**.`,
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

export function lifecycleHandle(client: Client, model: string, version: number): WorkflowHandle {
  validateKey(model, version);
  return client.workflow.getHandle(lifecycleWorkflowId(model, version));
}

export async function getState(client: Client, model: string, version: number): Promise<LifecycleState> {
  try {
    return await lifecycleHandle(client, model, version).query(stateQuery);
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

const decisionUpdates = { approve: approveUpdate, reject: rejectUpdate, retire: retireUpdate } as const;

/**
 * One decision as the workflow wants it: read the current approval round and PR head, sign exactly that, and
 * send it as an update whose id is the business key (kind, person, round), so a double click is one update and
 * a new round is a new decision.
 */
export async function decide(
  client: Client,
  kind: 'approve' | 'reject' | 'retire',
  model: string,
  version: number,
  input: DecisionBy,
  sign?: Sign,
): Promise<LifecycleState> {
  const handle = lifecycleHandle(client, model, version);
  const attempt = async (): Promise<LifecycleState> => {
    const s = await handle.query(stateQuery);
    const round = s.approvalRound ?? 1;
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
    const updateId = kind === 'retire' ? `retire:${input.by}` : `${kind}:${input.by}:r${round}`;
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
};

/** Turn SDK errors into ModelgateError with a one-line message; anything unexpected is returned as is. */
export async function mapError(client: Client, err: unknown, model: string, version: number): Promise<unknown> {
  if (err instanceof WorkflowNotFoundError) {
    // Updates to a closed execution also answer "not found": tell a finished lifecycle from a missing one.
    const desc = await lifecycleHandle(client, model, version).describe().catch(() => undefined);
    if (desc) {
      const outcome = (desc.searchAttributes as Record<string, unknown[] | undefined>).ModelgateOutcome?.[0];
      return new ModelgateError(
        'not_awaiting_approval',
        `${model} version ${version} is not awaiting approval: its lifecycle ended${outcome ? ` (${String(outcome)})` : ` (${desc.status.name.toLowerCase()})`}`,
      );
    }
    return new ModelgateError('not_found', `no lifecycle for ${model} version ${version} (start it with \`modelgate promote ${model} ${version}\`)`);
  }
  const cause = err instanceof WorkflowUpdateFailedError ? err.cause : err;
  if (cause instanceof ApplicationFailure && cause.type && codeByFailureType[cause.type]) {
    return new ModelgateError(codeByFailureType[cause.type]!, cause.message);
  }
  if (err instanceof Error && /workflow execution already completed/i.test(err.message)) {
    return new ModelgateError('not_awaiting_approval', `${model} version ${version}: its lifecycle has already finished`);
  }
  return err;
}
