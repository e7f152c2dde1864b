/**
 * How the CLI waits on a lifecycle after it acted: poll the version's state through the API (the caller's token,
 * `read` scope), write a progress line to stderr whenever the summary changes, and stop when `settled` says so
 * or the timeout passes. What counts as settled after an approval is `afterApproval` (pure, unit-tested).
 */
import type { LifecycleState } from '../workflows/definitions.js';
import { versionPath, type ApiClient } from './api-client.js';
import { CliError } from './context.js';

/** Where a lifecycle stands for the person waiting; `ok: false` ends the command non-zero. */
export interface Settled {
  ok: boolean;
  /** One line: what happened. */
  message: string;
  state: LifecycleState;
}

export interface WaitOptions {
  timeoutSec: number;
  /** A progress line (stderr); not called when undefined. */
  progress?: (line: string) => void;
  intervalMs?: number;
}

/** Approvals of the current round (a dropped round's do not count). */
export function currentApprovals(s: LifecycleState): number {
  const round = s.approvalRound ?? 1;
  return s.approvals.filter((a) => (a.round ?? 1) === round).length;
}

/** The quorum this run needs: a rollback run's from the policy's `rollback:` section, else the approval one. */
export function quorumOf(s: LifecycleState): number | undefined {
  if (s.request?.kind === 'rollback' && s.policy?.rollback) return s.policy.rollback.quorum;
  return s.policy?.approval.quorum;
}

export function summary(s: LifecycleState): string {
  const approvals = s.approvals.filter((a) => (a.round ?? 1) === (s.approvalRound ?? 1)).map((a) => a.by).join(', ');
  const parts = [`${s.model} v${s.version}: stage ${s.stage}, ${s.phase.replace(/_/g, ' ')}`];
  if (s.request) parts.push(`${s.request.kind === 'rollback' ? 'rollback' : 'promoted again'} (${s.request.reason})`);
  if (s.outcome) parts.push(`outcome ${s.outcome}${s.outcomeReason ? ` (${s.outcomeReason})` : ''}`);
  if (approvals) parts.push(`approved by ${approvals}`);
  const quorum = quorumOf(s);
  if (s.phase === 'awaiting_approval' && quorum !== undefined) {
    parts.push(`needs ${Math.max(0, quorum - currentApprovals(s))} more approval(s) before ${s.approvalDeadline}`);
  }
  return parts.join('; ');
}

/** The detail of the newest timeline entry whose action matches, for saying why something happened. */
function lastDetail(s: LifecycleState, action: RegExp): string | undefined {
  for (let i = s.timeline.length - 1; i >= 0; i--) {
    const t = s.timeline[i];
    if (action.test(t.action)) return t.detail ?? t.action;
  }
  return undefined;
}

/**
 * After an approval (`start` is the state the approve update answered): settled when the version is in
 * Production, when more approvals are needed, when it is back in waiting after it had left (the approvals
 * dropped for a new round, or the re-check under the lock failed and kept them), or when the lifecycle ended.
 * `left` says whether a state after the approval was seen outside awaiting_approval.
 */
export function afterApproval(start: LifecycleState, s: LifecycleState, left: boolean): Settled | undefined {
  const name = `${s.model} v${s.version}`;
  if (s.phase === 'production') return { ok: true, message: `${name} is in Production`, state: s };
  if (s.phase === 'done') {
    return { ok: false, message: `${name} did not reach Production: its lifecycle ended (${s.outcome ?? 'done'}${s.outcomeReason ? `: ${s.outcomeReason}` : ''})`, state: s };
  }
  if (s.phase !== 'awaiting_approval') return undefined;
  if ((s.approvalRound ?? 1) > (start.approvalRound ?? 1)) {
    const why = lastDetail(s, /approvals dropped/) ?? 'a new approval round began';
    return { ok: false, message: `${name} is back awaiting approval; the approvals were dropped (${why})`, state: s };
  }
  const recheckFailed = s.recheck && !s.recheck.passed && JSON.stringify(s.recheck) !== JSON.stringify(start.recheck);
  if (recheckFailed || (left && s.recheck && !s.recheck.passed)) {
    return { ok: false, message: `${name} is back awaiting approval; the re-check under the lock failed (${s.recheck!.reasons.join('; ') || 'see status'}); approvals kept`, state: s };
  }
  if (left) return { ok: false, message: `${name} is back awaiting approval (${lastDetail(s, /./) ?? 'see status'})`, state: s };
  const quorum = quorumOf(s);
  if (quorum !== undefined && currentApprovals(s) < quorum) {
    return { ok: true, message: `${name} awaits ${quorum - currentApprovals(s)} more approval(s)`, state: s };
  }
  return undefined;
}

/** A lifecycle that was just started: settled when it needs a person (awaiting approval), serves, or ended. */
export function afterStart(s: LifecycleState): Settled | undefined {
  const name = `${s.model} v${s.version}`;
  if (s.phase === 'awaiting_approval') return { ok: true, message: `${name} awaits approval`, state: s };
  if (s.phase === 'production') return { ok: true, message: `${name} is in Production`, state: s };
  if (s.phase === 'done') return { ok: false, message: `${name}: its lifecycle ended (${s.outcome ?? 'done'}${s.outcomeReason ? `: ${s.outcomeReason}` : ''})`, state: s };
  return undefined;
}

/**
 * Polls until `settle(state, left)` answers; `first` (the state the action answered) is judged before any poll.
 * Throws a one-line CliError when the timeout passes (the lifecycle goes on).
 */
export async function waitFor(
  api: ApiClient,
  first: LifecycleState,
  settle: (s: LifecycleState, left: boolean) => Settled | undefined,
  opts: WaitOptions,
): Promise<Settled> {
  const { model, version } = first;
  const deadline = Date.now() + opts.timeoutSec * 1000;
  let left = false;
  let last = '';
  let s = first;
  for (;;) {
    if (s.phase !== 'awaiting_approval') left = true;
    const line = summary(s);
    if (line !== last) opts.progress?.(`  … ${line}`);
    last = line;
    const done = settle(s, left);
    if (done) return done;
    if (Date.now() > deadline) {
      throw new CliError(`${model} v${version} is still ${s.phase.replace(/_/g, ' ')} after ${opts.timeoutSec}s (it goes on; check \`modelgate status ${model} ${version}\`)`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 500));
    s = await api.get<LifecycleState>(versionPath(model, version));
  }
}
