/** `/ui/` — versions awaiting approval across models, newest wait first; the table body refreshes itself. */
import { registrantsOf } from '../workflows/transitions.js';
import { html, modelPath, relative, safeUrl, versionPath, type SafeHtml } from './html.js';
import type { PendingItem } from './data.js';

export function pendingRows(items: PendingItem[], notes: string[], now: number): SafeHtml {
  if (!items.length) {
    return html`<tr><td colspan="8" class="muted">${notes.length ? notes.join('; ') : 'Nothing is awaiting approval.'}</td></tr>`;
  }
  return html`${items.map(({ state: s, waitingSince }) => {
    const quorum = s.policy?.approval.quorum ?? 1;
    const round = s.approvalRound ?? 1;
    const approvals = s.approvals.filter((a) => (a.round ?? 1) === round);
    const ev = s.evaluation;
    const registrants = registrantsOf(s);
    return html`<tr data-testid="pending-row" data-model="${s.model}" data-version="${s.version}">
      <td data-label="Model"><a href="${modelPath(s.model)}">${s.model}</a></td>
      <td data-label="Version"><a href="${versionPath(s.model, s.version)}">version ${s.version}</a></td>
      <td data-label="Waiting since">${relative(waitingSince, now)}</td>
      <td data-label="Expires">${relative(s.approvalDeadline, now)}</td>
      <td data-label="Approvals">${approvals.length} / ${quorum}${approvals.length ? html` <span class="muted">(${approvals.map((a) => a.by).join(', ')})</span>` : ''}</td>
      <td data-label="Evaluation">${ev ? (ev.passed ? html`<span class="pass">passed</span>` : html`<span class="fail">failed</span>`) : html`<span class="muted">skipped</span>`}</td>
      <td data-label="Registrant">${registrants.join(', ') || html`<span class="muted">unknown</span>`}</td>
      <td data-label="Pull request">${s.pullRequest ? html`<a href="${safeUrl(s.pullRequest.url)}">PR ${s.pullRequest.id}</a>` : html`<span class="muted">—</span>`}</td>
    </tr>`;
  })}`;
}

export function pendingBody(input: { items: PendingItem[]; notes: string[]; model?: string; models: string[]; now: number }): SafeHtml {
  const q = input.model ? `?model=${encodeURIComponent(input.model)}` : '';
  const models = [...new Set([...input.models, ...(input.model ? [input.model] : [])])].sort();
  return html`<h1>Pending approvals</h1>
<form method="get" action="/ui/" class="filter">
  <label for="model-filter">Filter by model</label>
  <select id="model-filter" name="model">
    <option value="">All models</option>
    ${models.map((m) => html`<option value="${m}"${m === input.model ? html` selected` : ''}>${m}</option>`)}
  </select>
  <button type="submit" class="primary">Filter</button>
</form>
<div class="table-wrap">
<table class="stack" aria-describedby="pending-caption">
  <caption id="pending-caption" class="muted">Updates every few seconds.</caption>
  <thead><tr><th scope="col">Model</th><th scope="col">Version</th><th scope="col">Waiting since</th><th scope="col">Expires</th><th scope="col">Approvals / quorum</th><th scope="col">Evaluation</th><th scope="col">Registrant</th><th scope="col">PR</th></tr></thead>
  <tbody id="pending" data-refresh="/ui/fragments/pending${q}">${pendingRows(input.items, input.notes, input.now)}</tbody>
</table>
</div>`;
}
