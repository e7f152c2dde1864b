/**
 * Escaping by construction: the `html` tag escapes every interpolated value unless it is itself the output of
 * `html` (a SafeHtml). There is no "raw" helper, so a model name, tag, reason or comment can only ever reach the
 * page as text. Arrays are joined (each element escaped the same way); null/undefined/false render nothing.
 */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => ESCAPES[c]);
}

type Part = SafeHtml | string | number | boolean | null | undefined | readonly Part[];

function render(v: Part): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof SafeHtml) return v.value;
  if (Array.isArray(v)) return (v as readonly Part[]).map(render).join('');
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: Part[]): SafeHtml {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new SafeHtml(out);
}

/** A URL for href/src: only http(s) and same-site paths; anything else (javascript:, data:) becomes '#'. */
export function safeUrl(url: string | undefined): string {
  if (!url) return '#';
  if (url.startsWith('/') && !url.startsWith('//')) return url;
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : '#';
  } catch {
    return '#';
  }
}

/** Path of the version page (model names may hold any character MLflow allows). */
export function versionPath(model: string, version: number): string {
  return `/ui/models/${encodeURIComponent(model)}/versions/${version}`;
}

export function modelPath(model: string): string {
  return `/ui/models/${encodeURIComponent(model)}`;
}

/** "in 3h 12m", "5m ago" for a page that is re-rendered every few seconds. */
export function relative(iso: string | undefined, now: number): string {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '—';
  const d = t - now;
  const a = Math.abs(d);
  const s = Math.round(a / 1000);
  const text = s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m` : s < 86400 ? `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m` : `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
  return d >= 0 ? `in ${text}` : `${text} ago`;
}
