/**
 * Loads the policy YAML (docs/policy.md), merges each `models.<name>` entry over `defaults`, validates every
 * resolved policy at load so a bad file stops the worker at start, and points every error at the file, line
 * and column of the offending node: `<file>:<line>:<col>: <path>: <reason>`. A value carrying a credential in a
 * URL is refused first (secrets.ts): the resolved policy travels into workflow history, queries and logs.
 */
import { readFileSync } from 'node:fs';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type YAMLMap } from 'yaml';
import type { z } from 'zod';
import { fileSchema, policySchema, type ParsedPolicy } from './schema.js';
import { findCredential } from './secrets.js';
import type { GitopsPolicy, ModelPolicy } from './types.js';
import type { CanaryPolicy } from '../canary/types.js';
import type { ParsedCanary } from './canary-schema.js';

export class PolicyError extends Error {
  override name = 'PolicyError';
  constructor(
    message: string,
    readonly file: string,
    readonly line?: number,
    readonly col?: number,
    readonly path?: string,
  ) {
    super(message);
  }
}

/** A model the file neither lists nor covers with complete `defaults`; the lifecycle fails closed on it. */
export class NoPolicyError extends Error {
  override name = 'NoPolicyError';
  constructor(
    readonly model: string,
    readonly file: string,
    why?: string,
  ) {
    super(`no policy for model ${model} in ${file}${why ? ` (${why})` : ''}`);
  }
}

export interface PolicySet {
  /** The file name used in messages. */
  readonly file: string;
  /** The resolved policy of `model` (a fresh plain-data copy); throws NoPolicyError. */
  policyFor(model: string): ModelPolicy;
  /** Model names listed under `models:`, in file order. */
  models(): string[];
}

type Path = Array<string | number>;

interface Located {
  message: string;
  line: number;
  col: number;
  path: string;
}

/** Sync read, then parsePolicy. */
export function loadPolicyFile(path: string): PolicySet {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw new PolicyError(`${path}: cannot read policy file: ${why}`, path);
  }
  return parsePolicy(text, path);
}

/** Parse and validate policy YAML; `fileName` only appears in messages. Throws PolicyError. */
export function parsePolicy(text: string, fileName: string): PolicySet {
  const lineCounter = new LineCounter();
  // merge: YAML `<<: *anchor` keys, a common way to share a block between models.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, merge: true });
  const where = new Locator(doc, lineCounter, fileName);

  const syntax = doc.errors[0];
  if (syntax) {
    const { line, col } = where.pos(syntax.pos[0]);
    const message = syntax.code === 'MULTIPLE_DOCS' ? 'a policy file holds one YAML document (found a second `---`)' : firstLine(syntax.message);
    throw where.error({ line, col, path: 'yaml', message });
  }

  // Before any other check, so no later message (an enum's "got …") can quote a credential.
  const credential = findCredential(doc.contents);
  if (credential) throw where.error({ ...where.nodePos(credential.node), path: formatPath(credential.path), message: credential.message });

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    throw where.error({ line: 1, col: 1, path: 'yaml', message: firstLine((err as Error).message) });
  }
  if (!isPlainObject(raw)) {
    throw where.error({ line: 1, col: 1, path: '(top level)', message: 'expected a mapping with `defaults:` and/or `models:`' });
  }

  // Top-level `x-…` keys are free for YAML anchors shared between models (as in docker-compose files).
  const top = fileSchema.safeParse(Object.fromEntries(Object.entries(raw).filter(([k]) => !k.startsWith('x-'))));
  if (!top.success) throw where.error(earliest(top.error.issues.map((i) => where.issue(i, [[]]))));

  const defaultsRaw = top.data.defaults;
  const modelsRaw = top.data.models ?? {};
  const problems: Located[] = [];
  const resolved = new Map<string, ModelPolicy>();
  let defaultsPolicy: ModelPolicy | undefined;
  let defaultsIncomplete: string | undefined;

  if (defaultsRaw) {
    const r = policySchema.safeParse(defaultsRaw);
    if (r.success) defaultsPolicy = toModelPolicy('', r.data);
    else {
      const found = r.error.issues.map((i) => where.issue(i, [['defaults']]));
      // Defaults may leave out a key every listed model supplies (say gitops.inferenceService); then only
      // unlisted models lack a policy. Anything present but wrong is still an error at load.
      if (r.error.issues.every(isMissing)) defaultsIncomplete = formatLocated(fileName, earliest(found));
      else problems.push(...found.filter((_, k) => !isMissing(r.error.issues[k])));
    }
  }

  for (const [model, entry] of Object.entries(modelsRaw)) {
    const merged = deepMerge(defaultsRaw ?? {}, entry ?? {});
    const r = policySchema.safeParse(merged);
    if (r.success) resolved.set(model, toModelPolicy(model, r.data));
    else problems.push(...r.error.issues.map((i) => where.issue(i, defaultsRaw ? [['models', model], ['defaults']] : [['models', model]])));
  }
  if (problems.length) throw where.error(earliest(problems));

  const names = Object.keys(modelsRaw);
  return {
    file: fileName,
    models: () => [...names],
    policyFor(model: string): ModelPolicy {
      const listed = resolved.get(model);
      if (listed) return structuredClone(listed);
      if (defaultsPolicy) return { ...structuredClone(defaultsPolicy), model };
      throw new NoPolicyError(
        model,
        fileName,
        defaultsIncomplete ? `it is not under models: and defaults alone are incomplete: ${defaultsIncomplete}` : undefined,
      );
    },
  };
}

/** The validated schema output → the plain ModelPolicy the workflow receives (no undefined-valued keys). */
function toModelPolicy(model: string, p: ParsedPolicy): ModelPolicy {
  const { expiresAfter, fourEyes, ...approval } = p.approval;
  const fourEyesOn = fourEyes !== false;
  const unknownRegistrant = typeof fourEyes === 'object' ? fourEyes.unknownRegistrant : 'deny';
  const d = p.deployment;
  let kserve: ModelPolicy['deployment']['kserve'];
  if (d.kserve) {
    const { rolloutDeadline, argocdApplication, smokeUrl, ...rest } = d.kserve;
    kserve = {
      ...rest,
      rolloutDeadlineMs: rolloutDeadline,
      ...(argocdApplication ? { argocdApplication } : {}),
      ...(smokeUrl ? { smokeUrl } : {}),
    };
  }
  return {
    model,
    evaluation: p.evaluation,
    approval: { ...approval, fourEyes: fourEyesOn, unknownRegistrant, expiresAfterMs: expiresAfter },
    deployment: {
      mode: d.mode,
      ...(d.lockLease !== undefined ? { lockLeaseMs: d.lockLease } : {}),
      lockWaitMs: d.lockWait,
      ...(d.gitops ? { gitops: toGitopsPolicy(d.gitops) } : {}),
      ...(kserve ? { kserve } : {}),
      ...(d.canary ? { canary: toCanaryPolicy(d.canary) } : {}),
    },
    notify: p.notify.slackChannel ? { slackChannel: p.notify.slackChannel } : {},
    ...(p.rollback ? { rollback: p.rollback } : {}),
  };
}

function toGitopsPolicy(g: NonNullable<ParsedPolicy['deployment']['gitops']>): GitopsPolicy {
  const { manualMergeTimeout, manualRevertTimeout, ...rest } = g;
  return { ...rest, manualMergeTimeoutMs: manualMergeTimeout, manualRevertTimeoutMs: manualRevertTimeout };
}

function toCanaryPolicy(c: ParsedCanary): CanaryPolicy {
  return {
    steps: c.steps,
    metrics: c.metrics.map(({ interval, failureCondition, ...m }) => ({
      ...m,
      ...(failureCondition !== undefined ? { failureCondition } : {}),
      intervalMs: interval,
    })),
    ...(c.finalSoak !== undefined ? { finalSoakMs: c.finalSoak } : {}),
    ...(c.commit !== undefined ? { commit: c.commit } : {}),
  };
}

function isMissing(issue: z.ZodIssue): boolean {
  return issue.code === 'invalid_type' && issue.received === 'undefined';
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Maps merge key by key; anything else (arrays included) in `over` replaces `base`. */
function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? deepMerge(b, v) : v;
  }
  return out;
}

function firstLine(s: string): string {
  return s.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '').trim();
}

function earliest(found: Located[]): Located {
  return [...found].sort((a, b) => a.line - b.line || a.col - b.col)[0];
}

function formatLocated(file: string, l: Located): string {
  return `${file}:${l.line}:${l.col}: ${l.path}: ${l.message}`;
}

function formatPath(path: Path): string {
  let s = '';
  for (const seg of path) {
    if (typeof seg === 'number') s += `[${seg}]`;
    else if (/^[\w-]+$/.test(seg)) s += s ? `.${seg}` : seg;
    else s += `[${JSON.stringify(seg)}]`;
  }
  return s || '(top level)';
}

interface Found {
  key?: Node;
  value?: Node;
}

/** Finds YAML nodes for zod issue paths and turns issues into located one-line messages. */
class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
    private readonly file: string,
  ) {}

  pos(offset: number): { line: number; col: number } {
    const p = this.lines.linePos(offset);
    return p.line === 0 ? { line: 1, col: offset + 1 } : p;
  }

  error(l: Located): PolicyError {
    return new PolicyError(formatLocated(this.file, l), this.file, l.line, l.col, l.path);
  }

  /**
   * `prefixes` are where the policy's keys sit in the file, most specific first (the model's entry, then
   * defaults): the value that failed may come from either. A key that is missing points at its nearest
   * existing parent.
   */
  issue(issue: z.ZodIssue, prefixes: Path[]): Located {
    let rel: Path = issue.path;
    let message = describe(issue);
    if (issue.code === 'unrecognized_keys') {
      rel = [...issue.path, issue.keys[0]];
      if (issue.keys.length > 1) message += ` (also unknown here: ${issue.keys.slice(1).join(', ')})`;
    }
    const pointAtKey = issue.code === 'unrecognized_keys' || isMissing(issue);
    for (const prefix of prefixes) {
      const full = [...prefix, ...rel];
      const f = this.find(full);
      if (f && (f.value || f.key)) {
        const node = pointAtKey || !hasContent(f.value) ? (f.key ?? f.value) : f.value;
        return { ...this.nodePos(node), path: formatPath(full), message };
      }
    }
    // Missing: the deepest parent that exists, preferring the earlier prefix on ties.
    let best: { depth: number; full: Path; node?: Node } | undefined;
    for (const prefix of prefixes) {
      for (let n = rel.length - 1; n >= 0; n--) {
        const f = this.find([...prefix, ...rel.slice(0, n)]);
        if (!f) continue;
        const depth = prefix.length + n;
        if (!best || depth > best.depth) best = { depth, full: [...prefix, ...rel], node: f.key ?? f.value };
        break;
      }
    }
    const full = best?.full ?? [...prefixes[0], ...rel];
    return { ...this.nodePos(best?.node), path: formatPath(full), message };
  }

  nodePos(node: Node | undefined): { line: number; col: number } {
    return node?.range ? this.pos(node.range[0]) : { line: 1, col: 1 };
  }

  /** Walks maps (including `<<` merged ones), sequences and aliases; undefined when the path is absent. */
  private find(path: Path): Found | undefined {
    let current: Found = { value: (this.doc.contents) ?? undefined };
    for (const seg of path) {
      const node = this.deref(current.value);
      if (isMap(node)) {
        const pair = this.pairIn(node, String(seg));
        if (!pair) return undefined;
        current = { key: pair.key as Node, value: (pair.value as Node | null) ?? undefined };
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg] as Node | undefined;
        if (!item) return undefined;
        current = { value: item };
      } else return undefined;
    }
    return current;
  }

  private pairIn(map: YAMLMap, key: string): { key: unknown; value: unknown } | undefined {
    const direct = map.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
    if (direct) return direct;
    for (const p of map.items) {
      if (!isScalar(p.key) || p.key.value !== '<<') continue;
      const sources = isSeq(p.value) ? p.value.items : [p.value];
      for (const s of sources) {
        const m = this.deref(s as Node);
        if (isMap(m)) {
          const inner = this.pairIn(m, key);
          if (inner) return inner;
        }
      }
    }
    return undefined;
  }

  private deref(node: Node | undefined): Node | undefined {
    return isAlias(node) ? ((node.resolve(this.doc)) ?? undefined) : node;
  }
}

/** A `key:` with nothing after it parses as an empty null scalar; point at the key then. */
function hasContent(node: Node | undefined): boolean {
  return !!node?.range && !(isScalar(node) && node.value === null && node.range[0] === node.range[1]);
}

function describe(issue: z.ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.received === 'undefined') return 'required';
      // Keep a schema's own wording ("expected a duration string such as …"), reword zod's default one.
      return /^Expected .*, received /.test(issue.message) ? `expected ${issue.expected}, got ${issue.received}` : issue.message;
    case 'invalid_enum_value':
      return `must be one of ${issue.options.map(String).join(', ')} (got ${JSON.stringify(issue.received)})`;
    default:
      return issue.message;
  }
}
