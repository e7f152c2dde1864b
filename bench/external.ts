/**
 * P3/P4/P5 are measured by functions other parts of the project own (bench/p3-approve-latency.ts,
 * bench/p4-active-endpoint.ts, bench/p5-freshness.ts). The runner loads each by file name at run time, so a
 * part that is not written yet — or that throws — becomes "not measured (why)" instead of stopping the bench.
 * They are called as `measurePn(ctx: BenchContext)` and may answer with a number, a Figure-like object
 * (`{ value | ratio, target?, pass?, detail? … }`), an array of them, or `{ figures: [...] }`.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { check, fmt, type BenchContext, type Figure } from './support.js';

export interface ExternalPart {
  id: 'P3' | 'P4' | 'P5';
  file: string;
  exportName: string;
  name: string;
  target: string;
  /** Pass rule for the main ratio when the part does not say. */
  rule: { op: '<=' | '>='; bound: number };
}

export const EXTERNAL_PARTS: ExternalPart[] = [
  {
    id: 'P3',
    file: 'p3-approve-latency.js',
    exportName: 'measureP3',
    name: 'p99 approve via Slack/API ÷ (p99 Temporal update + bare HTTP)',
    target: '≤ 1.3 and p99 ≤ 300 ms',
    rule: { op: '<=', bound: 1.3 },
  },
  {
    id: 'P4',
    file: 'p4-active-endpoint.js',
    exportName: 'measureP4',
    name: 'active endpoint req/s on cache hits ÷ bare node:http',
    target: '≥ 0.85, p99 ≤ 1.2×',
    rule: { op: '>=', bound: 0.85 },
  },
  {
    id: 'P5',
    file: 'p5-freshness.js',
    exportName: 'measureP5',
    name: 'Production change → endpoint serves it ÷ one update round trip',
    target: '≤ 3',
    rule: { op: '<=', bound: 3 },
  },
];

export async function measureExternal(part: ExternalPart, ctx: BenchContext): Promise<Figure[]> {
  const skipped = (why: string): Figure[] => [{ id: part.id, name: part.name, target: part.target, skipped: why }];
  const url = new URL(`./${part.file}`, import.meta.url);
  if (!existsSync(fileURLToPath(url))) return skipped(`bench/${part.file.replace(/\.js$/, '.ts')} does not exist yet`);
  let fn: unknown;
  try {
    const mod = (await import(url.href)) as Record<string, unknown>;
    fn = mod[part.exportName];
  } catch (err) {
    return skipped(`loading bench/${part.file} failed: ${oneLine(err)}`);
  }
  if (typeof fn !== 'function') return skipped(`bench/${part.file} has no export ${part.exportName}`);
  try {
    const result: unknown = await (fn as (c: BenchContext) => Promise<unknown>)(ctx);
    const figures = normalize(part, result);
    return figures.length ? figures : skipped(`${part.exportName} returned nothing usable (${JSON.stringify(result)?.slice(0, 200)})`);
  } catch (err) {
    return skipped(`${part.exportName} threw: ${oneLine(err)}`);
  }
}

function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0].slice(0, 300);
}

function normalize(part: ExternalPart, result: unknown): Figure[] {
  if (typeof result === 'number') return [mainFigure(part, result)];
  if (Array.isArray(result)) return result.flatMap((r, i) => normalizeOne(part, r, i));
  if (result && typeof result === 'object' && Array.isArray((result as { figures?: unknown }).figures)) {
    return ((result as { figures: unknown[] }).figures).flatMap((r, i) => normalizeOne(part, r, i));
  }
  return normalizeOne(part, result, 0);
}

function mainFigure(part: ExternalPart, value: number, detail?: string): Figure {
  return { id: part.id, name: part.name, target: part.target, value, pass: check(value, part.rule.op, part.rule.bound), detail };
}

function normalizeOne(part: ExternalPart, r: unknown, index: number): Figure[] {
  if (typeof r === 'number') return [index === 0 ? mainFigure(part, r) : { ...mainFigure(part, r), id: `${part.id}.${index + 1}` }];
  if (!r || typeof r !== 'object') return [];
  const o = r as Record<string, unknown>;
  const value = typeof o.value === 'number' ? o.value : typeof o.ratio === 'number' ? o.ratio : undefined;
  const known = new Set(['id', 'name', 'value', 'ratio', 'target', 'pass', 'detail', 'skipped']);
  const extras = Object.entries(o)
    .filter(([k, v]) => !known.has(k) && v !== undefined && typeof v !== 'function')
    .map(([k, v]) => `${k}=${typeof v === 'number' ? (Number.isInteger(v) ? String(v) : fmt(v)) : JSON.stringify(v)}`);
  const detail = [typeof o.detail === 'string' ? o.detail : undefined, extras.length ? extras.join(', ') : undefined].filter(Boolean).join('; ');
  const base = value !== undefined && index === 0 ? mainFigure(part, value) : { id: part.id, name: part.name, target: part.target, value };
  return [
    {
      ...base,
      id: typeof o.id === 'string' ? o.id : index === 0 ? part.id : `${part.id}.${index + 1}`,
      name: typeof o.name === 'string' ? o.name : base.name,
      target: typeof o.target === 'string' ? o.target : base.target,
      pass: typeof o.pass === 'boolean' ? o.pass : base.pass,
      detail: detail || undefined,
      skipped: typeof o.skipped === 'string' ? o.skipped : value === undefined ? 'no value returned' : undefined,
    },
  ];
}
