/**
 * Text renderings of the audit report and history: an aligned table for terminals and Markdown to paste into a
 * ticket. JSON output is the report object itself.
 */
import type { HistoryEntry } from './history.js';
import type { AuditReport } from './types.js';

/** Aligned columns, two spaces apart; the header underlined. */
export function textTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function mdCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function markdownTable(header: string[], rows: string[][]): string {
  return [
    `| ${header.map(mdCell).join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`),
  ].join('\n');
}

const num = (n: number | null): string => (n === null ? '—' : String(n));
const signed = (n: number | null): string => (n === null ? '—' : n > 0 ? `+${n}` : String(n));
const orDash = (s: string | null | undefined): string => (s ? s : '—');

function subjectText(r: AuditReport): string {
  if (r.subject === 'production') return 'serving now';
  if (r.subject === 'production_at') return `serving at ${r.productionAt?.at}`;
  return r.serving.subjectIsServing ? 'requested; serving now' : 'requested';
}

/** The audit as rows of [question, answer] pairs per section — shared by the text and Markdown renderings. */
function sections(r: AuditReport): Array<{ title: string; pairs?: Array<[string, string]>; table?: { header: string[]; rows: string[][] } }> {
  const s: ReturnType<typeof sections> = [];
  const serving: Array<[string, string]> = [
    ['Production version now', r.serving.productionVersion === null ? 'none' : `${r.serving.productionVersion}${r.serving.subjectIsServing ? ' (this version)' : ''}`],
    ['Storage URI', orDash(r.serving.storageUri)],
    ['Stage / aliases', `${r.serving.stage} / ${r.serving.aliases.join(', ') || '—'}`],
  ];
  if (r.serving.manifest) {
    const m = r.serving.manifest;
    serving.push(['Manifest', `${m.source}${m.revision ? `@${m.revision}` : ''}: ${orDash(m.storageUri)}${m.agrees === true ? ' (agrees with MLflow)' : m.agrees === false ? ' (DIFFERS from MLflow)' : ''}`]);
  }
  s.push({ title: '1. What is serving', pairs: serving });
  const metrics = Object.entries(r.metrics);
  s.push({ title: '2. Metrics', pairs: metrics.length ? metrics.map(([k, v]) => [k, String(v)]) : [['(none)', 'the run logged no metrics']] });
  s.push({
    title: '3. When trained',
    pairs: [
      ['Run', `${orDash(r.training.runId)}${r.training.runName ? ` (${r.training.runName})` : ''}${r.training.experimentId ? `, experiment ${r.training.experimentId}` : ''}`],
      ['Started', orDash(r.training.startedAt)],
      ['Ended', `${orDash(r.training.endedAt)}${r.training.status ? ` (${r.training.status})` : ''}`],
      ['By', orDash(r.training.user)],
    ],
  });
  const data: Array<[string, string]> = Object.entries(r.data.tags).map(([k, v]) => [k, v]);
  for (const [k, v] of Object.entries(r.data.params)) data.push([`param ${k}`, v]);
  s.push({ title: '4. What data', pairs: data.length ? data : [['(none)', 'no data.*/training.* tags or params on the run']] });
  const a = r.approval;
  let approvals: Array<[string, string]>;
  if (!a.approvals.length) approvals = [['(none)', 'no approval recorded']];
  else if (a.source === 'workflow') {
    approvals = a.approvals.map((x) => [
      x.by,
      [x.at ?? '', x.via ? `via ${x.via}` : '', x.verified === false ? '(unverified identity)' : '', x.comment ? `"${x.comment}"` : ''].filter(Boolean).join(' '),
    ]);
  } else {
    // MLflow keeps the approvers and one time: when the last approval completed the quorum.
    approvals = [
      ['Approved by', a.approvals.map((x) => x.by).join(', ')],
      ['Approved at', a.approvedAt ? `${a.approvedAt} (quorum reached)` : '—'],
    ];
  }
  if (a.pullRequest.url || a.pullRequest.mergeSha) {
    approvals.push(['Pull request', `${orDash(a.pullRequest.url)}${a.pullRequest.mergeSha ? ` merged as ${a.pullRequest.mergeSha.slice(0, 12)}` : ''}${a.pullRequest.mergedBy ? ` by ${a.pullRequest.mergedBy}` : ''}`]);
  }
  if (a.registrants) approvals.push(['Registrant', a.registrants.length ? a.registrants.join(', ') : 'unknown (no verified source: MLflow user_id or an attested promotion request)']);
  approvals.push(['Promoted at', orDash(a.promotedAt)]);
  approvals.push(['Source', a.source === 'workflow' ? 'lifecycle workflow (Temporal)' : a.source === 'mlflow-tags' ? 'MLflow tags' : '—']);
  s.push({ title: '5. Who approved it, when', pairs: approvals });
  const c = r.comparison;
  if (c.previousVersion === null) {
    s.push({ title: '6. Compared with the previous Production version', pairs: [['(none)', 'no earlier Production version']] });
  } else {
    s.push({
      title: `6. Compared with version ${c.previousVersion} (previous Production, from ${c.source})`,
      table: {
        header: ['metric', `v${r.version}`, `v${c.previousVersion}`, 'delta'],
        rows: c.rows.map((x) => [x.metric, num(x.current), num(x.previous), signed(x.delta)]),
      },
    });
  }
  const hist = r.productionHistory.map((i) => [`v${i.version}`, i.from, i.to ?? 'now', i.endedBy ?? (i.to ? '' : 'serving')]);
  s.push({
    title: r.productionAt ? `7. Production at ${r.productionAt.at}: ${r.productionAt.version === null ? 'no version' : `version ${r.productionAt.version}`}` : '7. Production history',
    table: { header: ['version', 'from', 'to', 'ended'], rows: hist },
  });
  // Only a lifecycle that ran more than once (re-promoted, rolled back to) has runs worth listing.
  if (r.runs.length > 1 || r.runs.some((x) => x.request)) {
    s.push({
      title: `8. Runs of the lifecycle of version ${r.version}`,
      table: {
        header: ['started', 'closed', 'status', 'outcome', 'request'],
        rows: r.runs.map((x) => [x.startTime, orDash(x.closeTime), x.status, orDash(x.outcome), requestText(x.request)]),
      },
    });
  }
  if (r.canary) {
    const c = r.canary;
    const rows = c.steps.flatMap((st) =>
      (st.metrics.length ? st.metrics : [{ metric: '—', query: null, values: [], phases: [] }]).map((m) => [
        `${st.step + 1} (${st.percent}%)`,
        st.commit ? st.commit.slice(0, 12) : '—',
        orDash(st.revision),
        m.metric,
        m.values.map((v, i) => (v === null ? m.phases[i] ?? '—' : String(v))).join(', ') || '—',
        orDash(st.verdict),
      ]),
    );
    const extra = [
      `status ${c.status}`,
      c.failure ? `failure: ${c.failure.reason}` : '',
      c.rollback ? `rolled back by ${c.rollback.commit.slice(0, 12)}${c.rollback.previousServing === true ? ', previous revision serving' : ''}` : '',
      ...c.pauses.map((p) => `pause ${p.id} at step ${p.step + 1}: ${p.reason} → ${p.decision ?? 'undecided'}${p.by ? ` by ${p.by}` : ''}`),
    ].filter(Boolean);
    s.push({ title: `9. Canary (${extra.join('; ')})`, table: { header: ['step', 'commit', 'revision', 'metric', 'values', 'verdict'], rows } });
  }
  return s;
}

function requestText(q: AuditReport['runs'][number]['request']): string {
  if (!q) return 'first promotion';
  return `${q.kind === 'rollback' ? 'rollback' : 'promoted again'}${q.by ? ` by ${q.by}` : ''}: ${q.reason}`;
}

export function renderAuditText(r: AuditReport): string {
  const out = [`Audit of ${r.model} version ${r.version} (${subjectText(r)}) — generated ${r.generatedAt}`];
  for (const sec of sections(r)) {
    out.push('', sec.title);
    if (sec.pairs) {
      const w = Math.max(...sec.pairs.map(([k]) => k.length));
      for (const [k, v] of sec.pairs) out.push(`  ${k.padEnd(w)}  ${v}`);
    }
    if (sec.table) out.push(sec.table.rows.length ? textTable(sec.table.header, sec.table.rows).replace(/^/gm, '  ') : '  (none)');
  }
  if (r.lifecycle) {
    const l = r.lifecycle;
    const facts = [l.status, l.stage, l.outcome].filter(Boolean).join(', ');
    out.push('', `Lifecycle: ${l.workflowId}${facts ? ` (${facts})` : ''}`);
  }
  if (r.notes.length) out.push('', 'Notes:', ...r.notes.map((n) => `  - ${n}`));
  return out.join('\n');
}

export function renderAuditMarkdown(r: AuditReport): string {
  const out = [`## Audit: ${r.model} version ${r.version}`, '', `_${subjectText(r)}; generated ${r.generatedAt}_`];
  for (const sec of sections(r)) {
    out.push('', `### ${sec.title}`, '');
    if (sec.pairs) out.push(markdownTable(['', ''], sec.pairs.map(([k, v]) => [`**${k}**`, v])));
    if (sec.table) out.push(sec.table.rows.length ? markdownTable(sec.table.header, sec.table.rows) : '_none_');
  }
  if (r.lifecycle) out.push('', `Lifecycle workflow: \`${r.lifecycle.workflowId}\`${r.lifecycle.outcome ? ` (${r.lifecycle.outcome})` : ''}`);
  if (r.notes.length) out.push('', '**Notes**', '', ...r.notes.map((n) => `- ${n}`));
  return out.join('\n');
}

const historyHeader = ['started', 'closed', 'model', 'version', 'event', 'detail', 'approvers'];
function historyRows(entries: HistoryEntry[]): string[][] {
  return entries.map((e) => [e.startedAt, orDash(e.closedAt), orDash(e.model), num(e.version), e.event, e.detail, e.approvers.join(',') || '—']);
}

export function renderHistoryText(entries: HistoryEntry[]): string {
  return entries.length ? textTable(historyHeader, historyRows(entries)) : '(no lifecycles found)';
}

export function renderHistoryMarkdown(entries: HistoryEntry[]): string {
  return entries.length ? markdownTable(historyHeader, historyRows(entries)) : '_no lifecycles found_';
}
