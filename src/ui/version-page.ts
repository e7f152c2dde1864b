/**
 * `/ui/models/<model>/versions/<n>` — evaluation checks, metrics against the serving (and previous Production)
 * version, run lineage, the timeline, the GitOps change, links out, the "What if?" dry-run panel and the
 * decision forms (only for identities the policy allows; the reason why not otherwise).
 */
import { deltaClass, metricDirection } from './metric-direction.js';
import { mlflowRunUrl, mlflowVersionUrl, temporalWorkflowUrl } from '../gitops/pr-text.js';
import type { NotifyLinks } from '../slack/blocks.js';
import type { LifecycleState } from '../workflows/definitions.js';
import { lifecycleWorkflowId } from '../workflows/definitions.js';
import { registrantsOf } from '../workflows/transitions.js';
import { quorumProgress } from '../dryrun/eligibility.js';
import type { DryRunReport } from '../dryrun/types.js';
import type { VersionView } from './data.js';
import type { DecisionRights } from './eligibility.js';
import { html, modelPath, relative, safeUrl, versionPath, type SafeHtml } from './html.js';

export interface VersionPageInput {
  view: VersionView;
  rights: DecisionRights;
  csrf: string;
  links: NotifyLinks;
  now: number;
  flash?: { kind: 'success' | 'error'; text: string; code?: string };
}

/** The part that refreshes itself: phase, stage, outcome and approvals so far. */
export function statusFragment(s: LifecycleState | null, now: number): SafeHtml {
  if (!s) return html`<p class="muted">No lifecycle.</p>`;
  const quorum = s.policy?.approval.quorum ?? 1;
  const round = s.approvalRound ?? 1;
  const approvals = s.approvals.filter((a) => (a.round ?? 1) === round);
  return html`<dl class="facts">
  <dt>Phase</dt><dd><span class="phase" data-testid="phase">${s.phase.replace(/_/g, ' ')}</span></dd>
  <dt>Stage</dt><dd data-testid="stage">${s.stage}</dd>
  ${s.outcome ? html`<dt>Outcome</dt><dd data-testid="outcome">${s.outcome.replace(/_/g, ' ')}${s.outcomeReason ? ` — ${s.outcomeReason}` : ''}</dd>` : ''}
  <dt>Approvals</dt><dd data-testid="approvals">${approvals.length} / ${quorum}${approvals.length ? html` — ${approvals.map((a) => html`<span class="chip">${a.by} via ${a.via}${a.verified === false ? ' (unverified)' : ''}</span>`)}` : ''}</dd>
  ${s.phase === 'awaiting_approval' ? html`<dt>Expires</dt><dd>${s.approvalDeadline ?? '—'} (${relative(s.approvalDeadline, now)})</dd>` : ''}
  ${s.rejection ? html`<dt>Rejected</dt><dd>by ${s.rejection.by}: ${s.rejection.reason}</dd>` : ''}
</dl>`;
}

function decisionPanel(i: VersionPageInput): SafeHtml {
  const { view, rights, csrf } = i;
  const base = versionPath(view.model, view.version);
  const s = view.state;
  const progress = s && s.phase === 'awaiting_approval' ? html`<p class="muted">Quorum ${s.policy?.approval.quorum ?? 1}: ${quorumProgress(s)}.</p>` : '';
  if (!rights.approve.may && !rights.reject.may) {
    return html`<section aria-labelledby="decide-h" class="card"><h2 id="decide-h">Decision</h2>${progress}
      <p data-testid="why-not" data-code="${rights.approve.code}">You cannot decide on this version: ${rights.approve.reason}.</p></section>`;
  }
  return html`<section aria-labelledby="decide-h" class="card"><h2 id="decide-h">Decision</h2>${progress}
<div class="decide">
  ${rights.approve.may
    ? html`<form method="post" action="${base}/approve" data-testid="approve-form">
    <input type="hidden" name="_csrf" value="${csrf}">
    <label for="approve-comment">Comment (optional)</label>
    <textarea id="approve-comment" name="comment" maxlength="2000"></textarea>
    <button type="submit" class="primary" data-testid="approve">Approve version ${view.version}</button>
  </form>`
    : html`<p data-testid="why-not" data-code="${rights.approve.code}">You cannot approve: ${rights.approve.reason}.</p>`}
  ${rights.reject.may
    ? html`<form method="post" action="${base}/reject" data-testid="reject-form">
    <input type="hidden" name="_csrf" value="${csrf}">
    <label for="reject-reason">Reason for rejecting (required)</label>
    <textarea id="reject-reason" name="reason" required maxlength="2000" aria-required="true"></textarea>
    <button type="submit" class="danger" data-testid="reject">Reject version ${view.version}</button>
  </form>`
    : ''}
</div></section>`;
}

function fmt(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  return Number.isInteger(n) ? String(n) : n.toFixed(4);
}

function comparison(view: VersionView): SafeHtml {
  const s = view.state;
  const ev = s?.recheck ?? s?.evaluation;
  const current: Record<string, number> = { ...(view.audit?.metrics ?? {}), ...(ev?.candidateMetrics ?? {}) };
  const fromAudit: Record<string, number> = {};
  for (const r of view.audit?.comparison.rows ?? []) if (r.previous !== null) fromAudit[r.metric] = r.previous;
  const prevV = view.audit?.comparison.previousVersion ?? null;
  const producing = view.audit?.serving.productionVersion ?? null;
  // What serves: the version the gate compared against, else what MLflow says serves (when it is not this one).
  const servingVersion = ev?.baselineVersion ?? (producing !== null && producing !== view.version ? producing : undefined);
  // The gate records baseline metrics only for regression rules; otherwise the audit read them from the run.
  const serving =
    ev?.baselineMetrics && Object.keys(ev.baselineMetrics).length
      ? ev.baselineMetrics
      : prevV === servingVersion && Object.keys(fromAudit).length
        ? fromAudit
        : view.servingMetrics && view.servingMetrics.version === servingVersion
          ? view.servingMetrics.metrics
          : {};
  // The third column: the Production version before the serving one (what a rollback would return to).
  const prior = view.previousServing ?? (prevV !== null && prevV !== servingVersion && Object.keys(fromAudit).length ? { version: prevV, metrics: fromAudit } : null);
  const previous: Record<string, number> = prior?.metrics ?? {};
  const names = [...new Set([...Object.keys(current), ...Object.keys(serving), ...Object.keys(previous)])].sort();
  if (!names.length) return html`<p class="muted">No metrics recorded.</p>`;
  return html`<div class="table-wrap"><table data-testid="comparison">
  <thead><tr><th scope="col">Metric</th><th scope="col">This version (${view.version})</th>
  <th scope="col">Serving${servingVersion !== undefined ? ` (${servingVersion})` : ''}</th><th scope="col">Δ vs serving</th>
  ${prior ? html`<th scope="col">Previous Production (${prior.version})</th>` : ''}</tr></thead>
  <tbody>${names.map((m) => {
    const c = current[m];
    const b = serving[m];
    const d = c !== undefined && b !== undefined ? c - b : undefined;
    return html`<tr><th scope="row">${m}</th><td>${fmt(c)}</td><td>${servingVersion !== undefined ? fmt(b) : html`<span class="muted">nothing serves</span>`}</td>
      <td${d !== undefined ? html` class="${deltaClass(metricDirection(s?.policy?.evaluation, m), d)}"` : ''}>${d !== undefined ? `${d >= 0 ? '+' : ''}${fmt(d)}` : '—'}</td>
      ${prior ? html`<td>${fmt(previous[m])}</td>` : ''}</tr>`;
  })}</tbody></table></div>`;
}

function checks(s: LifecycleState | null): SafeHtml {
  const ev = s?.evaluation;
  if (!ev) return html`<p class="muted">${s ? 'The evaluation has not run (or was skipped for this run).' : 'No lifecycle.'}</p>`;
  const table = (title: string, e: NonNullable<LifecycleState['evaluation']>) => html`<p>${title}: ${e.passed ? html`<span class="pass">passed</span>` : html`<span class="fail">failed</span>`}${e.baselineVersion !== undefined ? ` (against version ${e.baselineVersion})` : ''}</p>
  <div class="table-wrap"><table data-testid="checks"><thead><tr><th scope="col">Check</th><th scope="col">Result</th><th scope="col">Actual</th><th scope="col">Detail</th></tr></thead>
  <tbody>${e.checks.map((c) => html`<tr><th scope="row">${c.rule}</th><td>${c.passed ? html`<span class="pass">pass</span>` : html`<span class="fail">fail</span>`}</td><td>${fmt(c.actual)}</td><td>${c.detail}</td></tr>`)}</tbody></table></div>`;
  return html`${table('Evaluation gate', ev)}${s?.recheck ? table('Re-check under the Production lock', s.recheck) : ''}`;
}

function lineage(view: VersionView, links: NotifyLinks): SafeHtml {
  const a = view.audit;
  if (!a) return html`<p class="muted">Run lineage is not available.</p>`;
  const t = a.training;
  const runUrl = mlflowRunUrl(links.mlflowUiUrl, t.experimentId ?? undefined, t.runId ?? undefined);
  const kv = (o: Record<string, string>) => {
    const e = Object.entries(o);
    return e.length ? html`${e.map(([k, v]) => html`<span class="chip">${k} = ${v}</span>`)}` : html`<span class="muted">none</span>`;
  };
  return html`<dl class="facts" data-testid="lineage">
  <dt>Run</dt><dd>${t.runId ? (runUrl ? html`<a href="${safeUrl(runUrl)}">${t.runName ?? t.runId}</a>` : (t.runName ?? t.runId)) : '—'}</dd>
  <dt>Trained</dt><dd>${t.startedAt ?? '—'}${t.endedAt ? ` → ${t.endedAt}` : ''}</dd>
  <dt>By</dt><dd>${t.user ?? '—'}</dd>
  <dt>Registrant</dt><dd>${(view.state ? registrantsOf(view.state) : (a.approval.registrants ?? [])).join(', ') || html`<span class="muted">unknown</span>`}</dd>
  <dt>Data tags</dt><dd>${kv(a.data.tags)}</dd>
  <dt>Params</dt><dd>${kv(a.data.params)}</dd>
</dl>`;
}

function timeline(s: LifecycleState | null): SafeHtml {
  if (!s?.timeline.length) return html`<p class="muted">Nothing recorded yet.</p>`;
  return html`<ol class="timeline" data-testid="timeline">${s.timeline.map((e) => html`<li><span class="muted">${e.at}</span> <strong>${e.actor}</strong> ${e.action}${e.detail ? html` — ${e.detail}` : ''}</li>`)}</ol>`;
}

function diffLines(diff: string): SafeHtml {
  return html`<pre class="diff" data-testid="diff">${diff.split('\n').map((l) => html`<span class="${l.startsWith('+') ? 'add' : l.startsWith('-') ? 'del' : ''}">${l}</span>\n`)}</pre>`;
}

function gitops(view: VersionView): SafeHtml {
  const pr = view.state?.pullRequest;
  const dry = 'report' in view.dryRun ? view.dryRun.report.gitops : undefined;
  if (!pr && !dry) return html`<p class="muted">Not deployed through GitOps (registry mode), or no pull request yet.</p>`;
  const diff = pr?.storageUri
    ? `- storageUri: ${pr.previousStorageUri ?? '(none)'}\n+ storageUri: ${pr.storageUri}`
    : (dry?.diff ?? '');
  return html`${pr ? html`<p><a href="${safeUrl(pr.url)}">Pull request ${pr.id}</a> on branch <code>${pr.branch}</code>${pr.headSha ? html`, head <code>${pr.headSha.slice(0, 12)}</code>` : ''}${pr.mergeSha ? html`, merged as <code>${pr.mergeSha.slice(0, 12)}</code>${pr.mergedBy ? ` by ${pr.mergedBy}` : ''}` : ''}</p>` : ''}
  ${dry && !pr ? html`<p>The promotion would open a PR on <code>${dry.repo}</code> (${dry.baseBranch}) changing <code>${dry.manifestPath}</code>.</p>` : ''}
  ${diff ? diffLines(diff) : ''}`;
}

export function whatIf(d: VersionView['dryRun']): SafeHtml {
  if (!('report' in d)) return html`<p class="muted" data-testid="dryrun-unavailable">${d.unavailable}</p>`;
  const r: DryRunReport = d.report;
  return html`<div data-testid="dryrun"><p>If promoted now: <strong>${r.outcome.replace(/_/g, ' ')}</strong> <span class="muted">(computed ${r.generatedAt})</span></p>
  ${r.blockers.length ? html`<ul>${r.blockers.map((b) => html`<li class="fail">${b}</li>`)}</ul>` : ''}
  ${r.notes.length ? html`<ul>${r.notes.map((n) => html`<li class="muted">${n}</li>`)}</ul>` : ''}
  <dl class="facts">
    <dt>Move</dt><dd>${r.move.kind}: ${r.move.detail}</dd>
    <dt>Serving</dt><dd>${r.serving.version !== undefined ? `version ${r.serving.version}` : 'nothing'} (${r.serving.source})</dd>
    <dt>Approval</dt><dd>quorum ${r.approval.quorum} of ${r.approval.approvers.join(', ') || 'nobody'}${r.approval.fourEyes ? ', four-eyes' : ''}${r.approval.reapproval.needed ? `; re-approval needed: ${r.approval.reapproval.reason}` : ''}</dd>
    ${r.approval.caller ? html`<dt>You</dt><dd>${r.approval.caller.may ? 'may approve' : `may not approve: ${r.approval.caller.reason ?? ''}`}</dd>` : ''}
    <dt>Rollout</dt><dd>${r.rollout.waitsFor}</dd>
  </dl></div>`;
}

export function versionBody(i: VersionPageInput): SafeHtml {
  const { view, links, now } = i;
  const s = view.state;
  const wf = lifecycleWorkflowId(view.model, view.version);
  const mlflowUrl = mlflowVersionUrl(links.mlflowUiUrl, view.model, view.version);
  const temporalUrl = temporalWorkflowUrl(links.temporalUiUrl, links.namespace ?? 'default', wf);
  const base = versionPath(view.model, view.version);
  return html`<p><a href="${modelPath(view.model)}">← ${view.model}</a></p>
<h1>${view.model} — version ${view.version}</h1>
${i.flash ? html`<p class="${i.flash.kind}" role="status" data-testid="flash"${i.flash.code ? html` data-code="${i.flash.code}"` : ''}>${i.flash.text}</p>` : ''}
${view.notes.map((n) => html`<p class="notice">${n}</p>`)}
<section aria-labelledby="status-h" class="card"><h2 id="status-h">Status</h2>
  <div id="status" data-refresh="${base}/status" aria-live="polite">${statusFragment(s, now)}</div>
</section>
${decisionPanel(i)}
<section aria-labelledby="checks-h"><h2 id="checks-h">Evaluation checks</h2>${checks(s)}</section>
<section aria-labelledby="cmp-h"><h2 id="cmp-h">Metrics compared</h2>${comparison(view)}</section>
<section aria-labelledby="lineage-h"><h2 id="lineage-h">Run lineage</h2>${lineage(view, links)}</section>
<section aria-labelledby="timeline-h"><h2 id="timeline-h">Timeline</h2>${timeline(s)}</section>
<section aria-labelledby="gitops-h"><h2 id="gitops-h">Manifest change (GitOps)</h2>${gitops(view)}</section>
<section aria-labelledby="whatif-h"><h2 id="whatif-h">What if? (dry run)</h2>${whatIf(view.dryRun)}</section>
<section aria-labelledby="links-h"><h2 id="links-h">Links</h2><ul>
  <li>${mlflowUrl ? html`<a href="${safeUrl(mlflowUrl)}">MLflow model version</a>` : html`<span class="muted">MLflow UI not configured (MLFLOW_UI_URL)</span>`}</li>
  <li>${temporalUrl ? html`<a href="${safeUrl(temporalUrl)}">Temporal execution ${wf}</a>` : html`<span class="muted">Temporal execution ${wf} (TEMPORAL_UI_URL not configured)</span>`}</li>
</ul></section>`;
}
