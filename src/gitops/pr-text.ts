/**
 * Titles, bodies (markdown) and commit messages of promotion and revert pull requests. The body is what a
 * reviewer reads before merging: links to the MLflow run and version and to the Temporal execution, the
 * evaluation verdict, and the candidate's metrics beside the current Production version's.
 */
import type { EvaluationResult } from '../workflows/definitions.js';
import { maskUrlCredentials } from '../util/url-credentials.js';
import type { ServingFields } from './manifest.js';

export interface GitopsLinks {
  mlflowUiUrl?: string;
  temporalUiUrl?: string;
  /** Temporal namespace, for the execution link. */
  namespace: string;
}

export interface PromotionText {
  model: string;
  version: number;
  runId?: string;
  experimentId?: string;
  storageUri: string;
  /** What the base branch serves now. */
  previous: ServingFields;
  evaluation?: EvaluationResult;
  workflowId: string;
  manifestPath: string;
  inferenceService: { namespace: string; name: string };
  links: GitopsLinks;
  /** The signed marker comment (marker.ts), appended last. */
  marker: string;
}

export interface RevertText {
  model: string;
  version: number;
  mergeSha: string;
  reason: string;
  restored: ServingFields;
  /** The storage URI the revert replaces (what the base served when the revert was opened). */
  replaced?: string;
  workflowId?: string;
  manifestPath: string;
  inferenceService: { namespace: string; name: string };
  links: GitopsLinks;
  /** The signed marker comment (marker.ts), appended last. */
  marker: string;
}

export interface RetireText {
  model: string;
  version: number;
  /** Who retired it: the identity of the attested retire decision. */
  retiredBy: string;
  reason?: string;
  /** What the base serves now (the retired version). */
  replaced: ServingFields;
  /** previous: the version the InferenceService goes back to; remove: undefined. */
  restores?: { version: number; storageUri: string; runId?: string };
  /** remove: whether the whole file goes (it held nothing but the InferenceService). */
  deletesFile?: boolean;
  workflowId: string;
  manifestPath: string;
  inferenceService: { namespace: string; name: string };
  links: GitopsLinks;
  marker: string;
}

export interface RetireRevertText {
  model: string;
  version: number;
  mergeSha: string;
  reason: string;
  /** The retired version's storage URI the revert restores. */
  restored: ServingFields;
  workflowId?: string;
  manifestPath: string;
  inferenceService: { namespace: string; name: string };
  links: GitopsLinks;
  marker: string;
}

/** GitHub rejects bodies over 65536 characters. */
const MAX_BODY = 60_000;
const MAX_METRIC_ROWS = 100;

export function promotionTitle(model: string, version: number): string {
  return `Promote ${model} v${version} to Production`;
}

export function revertTitle(model: string, version: number): string {
  return `Revert ${model} v${version}`;
}

export function retireTitle(model: string, version: number, restores?: number): string {
  return restores !== undefined ? `Retire ${model} v${version}: back to v${restores}` : `Retire ${model} v${version}: remove its InferenceService`;
}

export function retireRevertTitle(model: string, version: number): string {
  return `Undo the retire of ${model} v${version}`;
}

export function mlflowVersionUrl(ui: string | undefined, model: string, version: number): string | undefined {
  return ui ? `${trimSlash(ui)}/#/models/${encodeURIComponent(model)}/versions/${version}` : undefined;
}

export function mlflowRunUrl(ui: string | undefined, experimentId: string | undefined, runId: string | undefined): string | undefined {
  return ui && experimentId && runId ? `${trimSlash(ui)}/#/experiments/${encodeURIComponent(experimentId)}/runs/${encodeURIComponent(runId)}` : undefined;
}

/** The UI redirects `/namespaces/<ns>/workflows/<id>` to the latest run of the workflow. */
export function temporalWorkflowUrl(ui: string | undefined, namespace: string, workflowId: string): string | undefined {
  return ui ? `${trimSlash(ui)}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}` : undefined;
}

export function promotionBody(t: PromotionText): string {
  const isvc = `${t.inferenceService.namespace}/${t.inferenceService.name}`;
  const versionLink = link(`${md(t.model)} v${t.version}`, mlflowVersionUrl(t.links.mlflowUiUrl, t.model, t.version));
  const rows: Array<[string, string]> = [
    ['Model version', versionLink],
    ['MLflow run', t.runId ? link(code(t.runId), mlflowRunUrl(t.links.mlflowUiUrl, t.experimentId, t.runId)) : '(none)'],
    ['Storage URI', code(t.storageUri)],
    ['Replaces', t.previous.storageUri ? `${code(t.previous.storageUri)}${t.previous.version ? ` (v${cell(t.previous.version)})` : ''}` : '(nothing)'],
    ['InferenceService', `${code(isvc)} in ${code(t.manifestPath)}`],
    ['Temporal execution', link(code(t.workflowId), temporalWorkflowUrl(t.links.temporalUiUrl, t.links.namespace, t.workflowId))],
  ];
  const parts = [
    `Promotes **${md(t.model)}** version **${t.version}** to Production: the InferenceService ${code(isvc)} will serve its artifacts once this is merged and synced.`,
    table(['', ''], rows),
    evaluationSection(t.evaluation),
    metricsSection(t.version, t.evaluation),
    'Approve through modelgate: it merges this pull request once the approval is verified and records the approvers. A merge made here by hand counts only when the merging GitHub account maps to an authorized approver in modelgate\'s directory; otherwise it is reverted. Closing it without merging rejects the version.',
  ];
  return withMarker(parts.filter(Boolean).join('\n\n'), t.marker);
}

export function revertBody(t: RevertText): string {
  const isvc = `${t.inferenceService.namespace}/${t.inferenceService.name}`;
  const rows: Array<[string, string]> = [
    ['Reverts', `${code(t.mergeSha)} (promotion of ${md(t.model)} v${t.version})`],
    ['Restores storage URI', t.restored.storageUri ? code(t.restored.storageUri) : '(none)'],
    ['Restores version', t.restored.version ? `v${cell(t.restored.version)}` : '(none recorded)'],
    ['InferenceService', `${code(isvc)} in ${code(t.manifestPath)}`],
  ];
  if (t.workflowId) {
    rows.push(['Temporal execution', link(code(t.workflowId), temporalWorkflowUrl(t.links.temporalUiUrl, t.links.namespace, t.workflowId))]);
  }
  return withMarker([`Reverts the promotion of **${md(t.model)}** v${t.version}.`, `Reason: ${md(t.reason)}`, table(['', ''], rows)].join('\n\n'), t.marker);
}

/**
 * The retire PR: who retired the version and why (their own words, with any URL credentials masked: a PR body
 * is readable by everyone with access to the repository), what it replaces and what it restores or removes.
 */
export function retireBody(t: RetireText): string {
  const isvc = `${t.inferenceService.namespace}/${t.inferenceService.name}`;
  const versionLink = link(`${md(t.model)} v${t.version}`, mlflowVersionUrl(t.links.mlflowUiUrl, t.model, t.version));
  const what = t.restores
    ? `the InferenceService ${code(isvc)} goes back to the previous Production version **v${t.restores.version}**`
    : t.deletesFile
      ? `the InferenceService ${code(isvc)} is removed (this deletes ${code(t.manifestPath)})`
      : `the InferenceService ${code(isvc)} is removed from ${code(t.manifestPath)}`;
  const rows: Array<[string, string]> = [
    ['Retired version', versionLink],
    ['Retired by', md(redact(t.retiredBy))],
    ['Reason', t.reason ? md(redact(t.reason)) : '(none given)'],
    ['Replaces', t.replaced.storageUri ? code(t.replaced.storageUri) : '(nothing)'],
    [
      t.restores ? 'Restores' : 'Removes',
      t.restores
        ? `${link(`v${t.restores.version}`, mlflowVersionUrl(t.links.mlflowUiUrl, t.model, t.restores.version))}: ${code(t.restores.storageUri)}`
        : `${code(isvc)}`,
    ],
    ['InferenceService', `${code(isvc)} in ${code(t.manifestPath)}`],
    ['Temporal execution', link(code(t.workflowId), temporalWorkflowUrl(t.links.temporalUiUrl, t.links.namespace, t.workflowId))],
  ];
  const parts = [
    `Retires **${md(t.model)}** version **${t.version}** from Production: ${what}.`,
    table(['', ''], rows),
    'The retire was decided in modelgate (an attested retire decision of an authorized approver): modelgate merges this pull request itself, waits until the cluster applied it, and only then archives the version in MLflow. Until then the version stays in Production.',
  ];
  return withMarker(parts.join('\n\n'), t.marker);
}

export function retireRevertBody(t: RetireRevertText): string {
  const isvc = `${t.inferenceService.namespace}/${t.inferenceService.name}`;
  const rows: Array<[string, string]> = [
    ['Reverts', `${code(t.mergeSha)} (retire of ${md(t.model)} v${t.version})`],
    ['Restores storage URI', t.restored.storageUri ? code(t.restored.storageUri) : '(none)'],
    ['InferenceService', `${code(isvc)} in ${code(t.manifestPath)}`],
  ];
  if (t.workflowId) {
    rows.push(['Temporal execution', link(code(t.workflowId), temporalWorkflowUrl(t.links.temporalUiUrl, t.links.namespace, t.workflowId))]);
  }
  return withMarker(
    [`Undoes the retire of **${md(t.model)}** v${t.version}: it stays in Production.`, `Reason: ${md(redact(t.reason))}`, table(['', ''], rows)].join('\n\n'),
    t.marker,
  );
}

/**
 * Commit message of the branch commit; no `Modelgate-Branch:` trailer (that one marks merge commits). The
 * marker goes last, so a GitHub branch commit proves it is modelgate's even before its PR exists.
 */
export function changeCommitMessage(title: string, details: string[], marker: string): string {
  return `${title}\n\n${details.join('\n')}\n\n${marker}\n`;
}

function evaluationSection(e: EvaluationResult | undefined): string {
  if (!e) return '### Evaluation\n\nNo evaluation result was recorded.';
  const lines = e.checks.map((c) => `- ${c.passed ? '✅' : '❌'} ${md(c.rule)}${c.detail ? ` — ${md(c.detail)}` : ''}`);
  return [`### Evaluation: ${e.passed ? 'passed ✅' : 'failed ❌'}`, lines.length ? lines.join('\n') : '_No checks configured._'].join('\n\n');
}

function metricsSection(version: number, e: EvaluationResult | undefined): string {
  if (!e) return '';
  const candidate = e.candidateMetrics ?? {};
  const baseline = e.baselineMetrics;
  const names = [...new Set([...Object.keys(candidate), ...Object.keys(baseline ?? {})])].sort();
  if (names.length === 0) return '';
  const prodLabel = baseline ? `Production${e.baselineVersion !== undefined ? ` v${e.baselineVersion}` : ''}` : 'Production';
  const rows = names.slice(0, MAX_METRIC_ROWS).map((name): string[] => {
    const c = candidate[name];
    const b = baseline?.[name];
    const delta = c !== undefined && b !== undefined ? signed(c - b) : '';
    return [code(name), num(c), num(b), delta];
  });
  const note = names.length > MAX_METRIC_ROWS ? `\n\n_${names.length - MAX_METRIC_ROWS} more metrics not shown._` : '';
  const header = baseline ? '### Metrics: candidate vs current Production' : '### Metrics (no current Production version to compare with)';
  return `${header}\n\n${table(['Metric', `Candidate v${version}`, prodLabel, 'Δ'], rows, ['---', '---:', '---:', '---:'])}${note}`;
}

function table(header: string[], rows: string[][], align?: string[]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(align ?? header.map(() => '---')), ...rows.map(line)].join('\n');
}

function num(v: number | undefined): string {
  if (v === undefined) return '—';
  return Number.isFinite(v) ? String(Number(v.toPrecision(6))) : String(v);
}

function signed(v: number): string {
  const s = num(v);
  return v > 0 ? `+${s}` : s;
}

function link(text: string, url: string | undefined): string {
  return url ? `[${text}](${url})` : text;
}

/** Inline code that survives backticks and table pipes in the value. */
function code(s: string): string {
  const clean = cell(s);
  const ticks = '`'.repeat(Math.max(0, ...(clean.match(/`+/g) ?? []).map((m) => m.length)) + 1);
  return `${ticks}${clean.startsWith('`') || clean.endsWith('`') ? ` ${clean} ` : clean}${ticks}`;
}

/** Text inside a table cell or paragraph: no line breaks, no pipes, no markdown emphasis or HTML. */
function md(s: string): string {
  return cell(s.replace(/([\\*_[\]<])/g, '\\$1'));
}

function cell(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').replace(/\|/g, '\\|');
}

function redact(s: string): string {
  return maskUrlCredentials(s);
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

/** The marker survives truncation: it is what lets a retried activity adopt the PR. */
function withMarker(body: string, marker: string): string {
  const text = body.length <= MAX_BODY ? body : `${body.slice(0, MAX_BODY)}\n\n_(truncated)_`;
  return `${text}\n\n${marker}`;
}
