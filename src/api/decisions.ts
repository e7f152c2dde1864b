/**
 * Approve/reject/retire as the API and Slack perform them: signed by this front door (the workflow trusts nothing
 * else) and sent as one update per (decision, person, approval round), so double clicks never make two
 * transitions; this layer only tells the
 * second caller that it was second ("already approved"), which the update result alone cannot say:
 * - concurrent requests for the same (version, decision, person) in this process share one call, and all but
 *   the first are answered `already: true`;
 * - a decision recorded before this request arrived (CLI earlier, an old double click) is `already: true`.
 * A different person arriving after the transition gets the workflow's NotAwaitingApproval, which is enriched
 * with who approved.
 */
import type { Client } from '@temporalio/client';
import { decide, getState, ModelgateError, type Sign } from '../client.js';
import { lifecycleWorkflowId, type LifecycleState } from '../workflows/definitions.js';

export type Decision = 'approve' | 'reject' | 'retire' | 'canary-continue' | 'canary-abort';

export interface DecisionResult {
  state: LifecycleState;
  /** True when this request did not cause the decision: it had already been made. */
  already: boolean;
}

export class Decisions {
  private readonly inflight = new Map<string, Promise<LifecycleState>>();

  constructor(
    private readonly client: Client,
    /** The front door's attestation signer; without one decisions go out bare (refused by default policy). */
    private readonly sign?: Sign,
  ) {}

  async decide(
    kind: Decision,
    model: string,
    version: number,
    input: { by: string; groups?: string[]; via: string; comment?: string; reason?: string },
  ): Promise<DecisionResult> {
    const key = `${lifecycleWorkflowId(model, version)}\u0000${kind}\u0000${input.by}`;
    const running = this.inflight.get(key);
    if (running) return { state: await running, already: true };
    const receivedAt = Date.now();
    const call = decide(this.client, kind, model, version, input, this.sign);
    this.inflight.set(key, call);
    try {
      const state = await call;
      return { state, already: decidedBefore(kind, state, input.by, receivedAt) };
    } catch (err) {
      throw await this.explain(err, model, version);
    } finally {
      this.inflight.delete(key);
    }
  }

  /** NotAwaitingApproval after someone else approved: say who, so the person knows it is "already approved". */
  private async explain(err: unknown, model: string, version: number): Promise<unknown> {
    if (!(err instanceof ModelgateError) || err.code !== 'not_awaiting_approval') return err;
    try {
      const s = await getState(this.client, model, version);
      if (s.phase === 'done') {
        return new ModelgateError('not_awaiting_approval', `${model} version ${version} is not awaiting approval: its lifecycle ended (${s.outcome ?? 'done'})`);
      }
      if (s.approvals.length > 0) {
        const who = s.approvals.map((a) => `${a.by}${a.via ? ` via ${a.via}` : ''}`).join(', ');
        return new ModelgateError('not_awaiting_approval', `${model} version ${version} is already approved (by ${who}); now ${s.phase}`);
      }
      if (s.rejection) {
        return new ModelgateError('not_awaiting_approval', `${model} version ${version} is already rejected (by ${s.rejection.by}: ${s.rejection.reason})`);
      }
      return new ModelgateError('not_awaiting_approval', `${model} version ${version} is not awaiting approval (now ${s.phase}${s.outcome ? `, ${s.outcome}` : ''})`);
    } catch {
      return err;
    }
  }
}

function decidedBefore(kind: Decision, s: LifecycleState, by: string, receivedAt: number): boolean {
  const round = s.approvalRound ?? 1;
  const at =
    kind === 'approve'
      ? s.approvals.find((a) => a.by === by && (a.round ?? 1) === round)?.at
      : kind === 'reject' && s.rejection?.by === by
        ? s.rejection.at
        : undefined;
  if (!at) return false;
  const t = Date.parse(at);
  return Number.isFinite(t) && t < receivedAt;
}
