/**
 * The Block Kit message of one lifecycle, rendered from its state alone so every writer (the notify activity,
 * the interaction handler after an approval) draws the same message. Approve/Reject buttons exist only while
 * the version awaits approval.
 */
import type { LifecycleState } from '../workflows/definitions.js';

export interface NotifyLinks {
  /** Base URL of the Temporal UI (TEMPORAL_UI_URL). */
  temporalUiUrl?: string;
  namespace?: string;
  /** Base URL of the MLflow UI (MLFLOW_UI_URL). */
  mlflowUiUrl?: string;
}

/** What a button carries back to /slack/interactions. */
export interface ActionValue {
  model: string;
  version: number;
}

export const APPROVE_ACTION = 'approve';
export const REJECT_ACTION = 'reject';
export const REJECT_VIEW = 'modelgate_reject';
export const REASON_BLOCK = 'reason';
export const REASON_INPUT = 'reason_input';

// Block Kit types kept loose on purpose: @slack/types unions are very wide and the shape is checked by Slack.
export type Block = Record<string, unknown>;

export function temporalLink(links: NotifyLinks, workflowId: string): string | undefined {
  if (!links.temporalUiUrl) return undefined;
  const base = links.temporalUiUrl.replace(/\/+$/, '');
  return `${base}/namespaces/${encodeURIComponent(links.namespace ?? 'default')}/workflows/${encodeURIComponent(workflowId)}`;
}

export function mlflowVersionLink(links: NotifyLinks, model: string, version: number): string | undefined {
  if (!links.mlflowUiUrl) return undefined;
  return `${links.mlflowUiUrl.replace(/\/+$/, '')}/#/models/${encodeURIComponent(model)}/versions/${version}`;
}

export function mlflowRunLink(links: NotifyLinks, runId: string): string | undefined {
  if (!links.mlflowUiUrl) return undefined;
  return `${links.mlflowUiUrl.replace(/\/+$/, '')}/#/runs/${encodeURIComponent(runId)}`;
}

/** Slack mrkdwn: `&`, `<` and `>` must be escaped in user-supplied text. */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function link(url: string | undefined, text: string): string {
  return url ? `<${url}|${esc(text)}>` : esc(text);
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toPrecision(4).replace(/\.?0+$/, '');
}

/**
 * The workflow may snapshot its state for Slack just before it flips the phase (Staging entered, evaluation
 * passed, phase still `evaluating`); such a version is awaiting a decision all the same.
 */
export function awaitingDecision(s: LifecycleState): boolean {
  if (s.outcome || s.rejection) return false;
  if (s.phase === 'awaiting_approval') return true;
  return s.phase === 'evaluating' && s.stage === 'Staging' && s.evaluation?.passed === true;
}

function outcomeLine(s: LifecycleState): string {
  switch (s.outcome) {
    case 'rejected':
      return s.rejection ? `Rejected by ${esc(s.rejection.by)}: ${esc(s.rejection.reason)}` : `Rejected${s.outcomeReason ? `: ${esc(s.outcomeReason)}` : ''}`;
    case 'rejected_by_evaluation':
      return `Rejected by evaluation${s.outcomeReason ? `: ${esc(s.outcomeReason)}` : ''}`;
    case 'expired':
      return 'Approval window expired; archived';
    case 'superseded':
      return `Superseded${s.supersededBy ? ` by version ${s.supersededBy}` : ''}`;
    case 'retired':
      return 'Retired from Production; archived';
    case 'rolled_back':
      return `Rolled back${s.previousProductionVersion ? ` to version ${s.previousProductionVersion}` : ''}${s.outcomeReason ? `: ${esc(s.outcomeReason)}` : ''}`;
    case 'registration_failed':
      return `Registration failed${s.outcomeReason ? `: ${esc(s.outcomeReason)}` : ''}`;
    case 'lock_wait_timed_out':
      return `Not promoted: the Production lock was not granted in time${s.outcomeReason ? ` (${esc(s.outcomeReason)})` : ''}`;
    case 'manual_merge_timed_out':
      return `Not promoted: nobody merged the pull request in time${s.outcomeReason ? ` (${esc(s.outcomeReason)})` : ''}`;
    case 'manual_revert_timed_out':
      return `Rollout failed and nobody merged the revert in time: a person must merge it${s.outcomeReason ? ` (${esc(s.outcomeReason)})` : ''}`;
    default:
      return `Finished (${s.stage})`;
  }
}

/** One line saying where the version is, used as the notification text and the first section. */
export function statusLine(s: LifecycleState): string {
  // The end (outcome) wins over the phase: the workflow may report an outcome before its phase says done.
  if (s.outcome) return outcomeLine(s);
  if (s.rejection) return `Rejected by ${esc(s.rejection.by)}: ${esc(s.rejection.reason)}`;
  const approvers = s.approvals.map((a) => `${a.by}${a.via ? ` via ${a.via}` : ''}`).join(', ');
  if (awaitingDecision(s) && s.recheck && !s.recheck.passed) {
    const against = s.recheck.baselineVersion !== undefined ? ` against version ${s.recheck.baselineVersion}, serving now` : '';
    return `Not promoted: the re-check${against} failed (${esc(s.recheck.reasons.join('; '))}); in *Staging*, awaiting approval again`;
  }
  if (awaitingDecision(s)) {
    return `In *Staging*, awaiting approval${s.approvalDeadline ? ` (expires ${s.approvalDeadline})` : ''}${approvers ? `; approved so far by ${esc(approvers)}` : ''}`;
  }
  switch (s.phase) {
    case 'awaiting_registration':
      return 'Waiting for MLflow to finish registering the version';
    case 'evaluating':
      return 'Evaluating against the policy';
    case 'deploying':
      return `Approved by ${esc(approvers || 'policy')}; deploying to Production`;
    case 'production':
      return `In *Production*${s.promotedAt ? ` since ${s.promotedAt}` : ''}${approvers ? ` (approved by ${esc(approvers)})` : ''}`;
    default:
      return outcomeLine(s);
  }
}

function evaluationText(s: LifecycleState): string | undefined {
  const e = s.evaluation;
  if (!e) return undefined;
  const lines = [`*Evaluation:* ${e.passed ? ':white_check_mark: passed' : ':x: failed'}`];
  for (const c of e.checks.slice(0, 10)) lines.push(`${c.passed ? '•' : '✗'} ${esc(c.rule)} — ${esc(c.detail)}`);
  return lines.join('\n');
}

function comparisonText(s: LifecycleState): string | undefined {
  const e = s.evaluation;
  if (!e || Object.keys(e.candidateMetrics).length === 0) return undefined;
  const base = e.baselineMetrics;
  const head = base && e.baselineVersion !== undefined ? `*Metrics vs Production (v${e.baselineVersion}):*` : '*Metrics (no Production version to compare):*';
  const lines = [head];
  for (const [name, value] of Object.entries(e.candidateMetrics).slice(0, 15)) {
    const b = base?.[name];
    if (b === undefined) lines.push(`${esc(name)}: ${fmt(value)}`);
    else {
      const d = value - b;
      lines.push(`${esc(name)}: ${fmt(value)} vs ${fmt(b)} (${d >= 0 ? '+' : ''}${fmt(d)})`);
    }
  }
  return lines.join('\n');
}

export function renderLifecycleMessage(s: LifecycleState, links: NotifyLinks): { text: string; blocks: Block[] } {
  const title = `${s.model} version ${s.version}${s.request?.kind === 'rollback' ? ' (rollback)' : ''}`;
  const text = `${title}: ${statusLine(s).replace(/\*/g, '')}`;
  const blocks: Block[] = [
    { type: 'header', text: { type: 'plain_text', text: title.slice(0, 150), emoji: false } },
    { type: 'section', text: { type: 'mrkdwn', text: statusLine(s) } },
  ];
  const fields = [
    `*Model:*\n${link(mlflowVersionLink(links, s.model, s.version), s.model)}`,
    `*Version:*\n${s.version}`,
    `*Stage:*\n${s.stage}`,
  ];
  if (s.facts?.runId) fields.push(`*Run:*\n${link(mlflowRunLink(links, s.facts.runId), s.facts.runId.slice(0, 12))}`);
  if (s.facts?.registeredBy) fields.push(`*Registered by:*\n${esc(s.facts.registeredBy)}`);
  if (s.request) fields.push(`*${s.request.kind === 'rollback' ? 'Rollback' : 'Promoted again'}:*\n${esc(s.request.reason)}${s.request.by ? ` (${esc(s.request.by)})` : ''}`);
  blocks.push({ type: 'section', fields: fields.map((t) => ({ type: 'mrkdwn', text: t })) });
  const ev = evaluationText(s);
  if (ev) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: ev.slice(0, 3000) } });
  const cmp = comparisonText(s);
  if (cmp) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: cmp.slice(0, 3000) } });
  const ctx: string[] = [];
  if (s.pullRequest) ctx.push(`PR: ${link(s.pullRequest.url, `#${s.pullRequest.id}`)}`);
  const t = temporalLink(links, s.workflowId);
  ctx.push(`Temporal: ${link(t, s.workflowId)}`);
  blocks.push({ type: 'context', elements: ctx.map((c) => ({ type: 'mrkdwn', text: c })) });
  if (awaitingDecision(s)) {
    const value = JSON.stringify({ model: s.model, version: s.version } satisfies ActionValue);
    blocks.push({
      type: 'actions',
      block_id: 'modelgate_decision',
      elements: [
        { type: 'button', action_id: APPROVE_ACTION, style: 'primary', text: { type: 'plain_text', text: 'Approve' }, value },
        { type: 'button', action_id: REJECT_ACTION, style: 'danger', text: { type: 'plain_text', text: 'Reject…' }, value },
      ],
    });
  }
  return { text, blocks };
}

/** The modal that asks for a rejection reason; private_metadata carries the version and where to report. */
export function rejectModal(value: ActionValue, meta: { responseUrl?: string; channel?: string; ts?: string }): Record<string, unknown> {
  return {
    type: 'modal',
    callback_id: REJECT_VIEW,
    private_metadata: JSON.stringify({ ...value, ...meta }),
    title: { type: 'plain_text', text: 'Reject version' },
    submit: { type: 'plain_text', text: 'Reject' },
    close: { type: 'plain_text', text: 'Cancel' },
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `Reject *${esc(value.model)}* version *${value.version}*?` } },
      {
        type: 'input',
        block_id: REASON_BLOCK,
        label: { type: 'plain_text', text: 'Reason (recorded in the audit trail)' },
        element: { type: 'plain_text_input', action_id: REASON_INPUT, multiline: true, min_length: 3, max_length: 1000 },
      },
    ],
  };
}
