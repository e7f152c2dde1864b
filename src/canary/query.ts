/**
 * Rendering a metric's PromQL template: `{{version}}` and `{{revision}}` (spaces inside the braces allowed).
 * The values come from MLflow and from the cluster, so they are treated as hostile: a version must be a whole
 * number, a revision a Kubernetes object name (DNS-1123 label), and both are escaped for a PromQL string
 * literal besides — a value can never close the label matcher's quotes and add its own selector or operator.
 */

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;
const KNOWN = new Set(['version', 'revision']);
const REVISION = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Placeholders in `query` other than version and revision (a stray `{{` or `}}` counts as one). */
export function unknownPlaceholders(query: string): string[] {
  const bad: string[] = [];
  for (const m of query.matchAll(PLACEHOLDER)) if (!KNOWN.has(m[1])) bad.push(m[0]);
  const rest = query.replace(PLACEHOLDER, '');
  if (rest.includes('{{') || rest.includes('}}')) bad.push(rest.includes('{{') ? '{{' : '}}');
  return bad;
}

/** Whether `query` needs the canary's revision. */
export function usesRevision(query: string): boolean {
  for (const m of query.matchAll(PLACEHOLDER)) if (m[1] === 'revision') return true;
  return false;
}

/** Escapes for the inside of a PromQL "…" or '…' string (backslash, both quotes, control characters). */
export function escapePromqlString(value: string): string {
  let out = '';
  for (const ch of value) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '\\') out += '\\\\';
    else if (ch === '"') out += '\\"';
    else if (ch === "'") out += "\\'";
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out;
}

export class QueryRenderError extends Error {
  override name = 'QueryRenderError';
}

/** The query with its placeholders filled in; throws QueryRenderError when a value is not what it must be. */
export function renderQuery(query: string, values: { version: number; revision?: string }): string {
  if (!Number.isSafeInteger(values.version) || values.version < 1) {
    throw new QueryRenderError('version is not a positive whole number');
  }
  if (usesRevision(query)) {
    if (values.revision === undefined) throw new QueryRenderError('the query uses {{revision}} but the canary revision is not known');
    if (values.revision.length > 63 || !REVISION.test(values.revision)) {
      throw new QueryRenderError('revision is not a Kubernetes object name');
    }
  }
  return query.replace(PLACEHOLDER, (whole, name: string) => {
    if (name === 'version') return escapePromqlString(String(values.version));
    if (name === 'revision') return escapePromqlString(values.revision ?? '');
    throw new QueryRenderError(`unknown placeholder ${whole}`);
  });
}
