/**
 * Reading and editing the KServe InferenceService manifest a promotion PR changes.
 *
 * The `yaml` Document API parses the file and locates the nodes; the edit is then spliced into the original
 * text at those nodes' source ranges, so comments, key order, quoting, indentation and every untouched line
 * stay byte-identical and the PR diff is only the changed lines. The result is re-parsed and compared with
 * the intended data; a layout the splicer does not handle (flow maps it cannot extend, block scalars) falls
 * back to re-stringifying the document, which keeps comments and order but may reformat.
 */
import { isDeepStrictEqual } from 'node:util';
import { isMap, isScalar, isSeq, parseAllDocuments, Scalar, stringify, type Document, type Node, type Pair } from 'yaml';
import { ManifestError } from './errors.js';

export const INFERENCE_SERVICE_API_VERSION = 'serving.kserve.io/v1beta1';

/** Annotation (and, when the value is a valid label value, label) keys modelgate writes. */
export const SERVING_KEYS = {
  model: 'modelgate.io/model',
  version: 'modelgate.io/version',
  runId: 'modelgate.io/run-id',
} as const;

export interface ManifestTarget {
  namespace: string;
  name: string;
}

export interface ServingFields {
  storageUri?: string;
  model?: string;
  version?: string;
  runId?: string;
}

export type Doc = Document.Parsed;
type Path = string[];
export interface Splice {
  start: number;
  end: number;
  text: string;
}

const STORAGE_URI_PATH = ['spec', 'predictor', 'model', 'storageUri'];

/** The serving fields of the target InferenceService in a manifest file. */
export function readServingFields(text: string, target: ManifestTarget, file = 'manifest'): ServingFields {
  const doc = selectTarget(parseDocs(text, file), target, file);
  const annotations = asStringMap(doc.getIn(['metadata', 'annotations']));
  const labels = asStringMap(doc.getIn(['metadata', 'labels']));
  const pick = (key: string) => annotations[key] ?? labels[key];
  const storageUri = doc.getIn(STORAGE_URI_PATH);
  return {
    storageUri: scalarString(storageUri),
    model: pick(SERVING_KEYS.model),
    version: pick(SERVING_KEYS.version),
    runId: pick(SERVING_KEYS.runId),
  };
}

/**
 * Point the target InferenceService at `fields.storageUri` and record model/version/run id. Undefined
 * model/version/runId remove the corresponding annotation and label (used when reverting to a manifest that
 * had none). Returns the new file text; throws ManifestError with a one-line reason.
 */
export function applyServingFields(
  text: string,
  target: ManifestTarget,
  fields: ServingFields & { storageUri: string },
  file = 'manifest',
): string {
  for (const [key, value] of Object.entries(fields)) {
    if (value !== undefined && (typeof value !== 'string' || /[\r\n]/.test(value) || value === '')) {
      throw new ManifestError(`${file}: ${key} must be a non-empty single-line string`);
    }
  }
  const docs = parseDocs(text, file);
  const index = docs.indexOf(selectTarget(docs, target, file));
  const doc = docs[index];
  if (!isMap(doc.getIn(['spec', 'predictor', 'model'], true))) {
    throw new ManifestError(
      `${file}: spec.predictor.model is missing; it must exist (modelFormat, protocolVersion) for modelgate to set its storageUri`,
    );
  }
  const edits: Array<{ path: Path; entries: Record<string, string | null> }> = [
    { path: ['spec', 'predictor', 'model'], entries: { storageUri: fields.storageUri } },
    {
      path: ['metadata', 'labels'],
      entries: {
        [SERVING_KEYS.model]: labelValue(fields.model),
        [SERVING_KEYS.version]: labelValue(fields.version),
        [SERVING_KEYS.runId]: labelValue(fields.runId),
      },
    },
    {
      path: ['metadata', 'annotations'],
      entries: {
        [SERVING_KEYS.model]: fields.model ?? null,
        [SERVING_KEYS.version]: fields.version ?? null,
        [SERVING_KEYS.runId]: fields.runId ?? null,
      },
    },
  ];

  const expected: unknown[] = docs.map((d): unknown => d.toJS() as unknown);
  for (const edit of edits) applyToJs(expected[index], edit.path, edit.entries);

  const splices: Splice[] = [];
  const supported = edits.every((edit) => planMapEdit(text, doc, edit.path, edit.entries, splices));
  if (supported) {
    const spliced = applySplices(text, splices);
    if (sameData(spliced, expected)) return spliced;
  }
  // Fallback: edit through the Document API and re-stringify (comments and key order survive).
  for (const edit of edits) {
    for (const [key, value] of Object.entries(edit.entries)) {
      if (value === null) {
        if (doc.hasIn([...edit.path, key])) doc.deleteIn([...edit.path, key]);
      } else doc.setIn([...edit.path, key], stringScalar(value));
    }
  }
  const rewritten = docs.map((d) => d.toString({ lineWidth: 0 })).join('');
  if (!sameData(rewritten, expected)) throw new ManifestError(`${file}: could not apply the change without altering other data`);
  return rewritten;
}

/**
 * Take the target InferenceService out of a manifest file (a retire with `onRetire: remove`): null when it is
 * the file's only document (the file is deleted), else the file without that document, every other byte kept.
 */
export function removeInferenceService(text: string, target: ManifestTarget, file = 'manifest'): string | null {
  const docs = parseDocs(text, file);
  const doc = selectTarget(docs, target, file);
  const others = docs.filter((d) => d !== doc && d.contents !== null);
  if (others.length === 0) return null;
  const [start, , end] = doc.range;
  const removed = text.slice(0, start) + text.slice(end);
  const expected: unknown[] = docs.filter((d) => d !== doc).map((d): unknown => d.toJS() as unknown);
  if (!sameData(removed, expected)) throw new ManifestError(`${file}: could not remove InferenceService ${target.name} without altering the other documents`);
  return removed;
}

/**
 * KServe cannot download MLflow's `models:/…` URIs; the physical location comes from get-download-uri and the
 * policy may map its prefix (e.g. the MLflow artifact root) to what the cluster reads (`s3://bucket/…`).
 * The first matching `from` wins.
 */
export function mapStorageUri(downloadUri: string, prefixMap: Array<{ from: string; to: string }>): string {
  const rule = prefixMap.find((r) => r.from !== '' && downloadUri.startsWith(r.from));
  return rule ? rule.to + downloadUri.slice(rule.from.length) : downloadUri;
}

// ---- selection and validation ----

/** @internal shared with canary-manifest.ts */
export function parseDocs(text: string, file: string): Doc[] {
  const docs = parseAllDocuments(text, { uniqueKeys: true });
  if (!Array.isArray(docs) || docs.length === 0) throw new ManifestError(`${file}: the file holds no YAML document`);
  for (const d of docs) {
    const err = d.errors[0];
    if (err) throw new ManifestError(`${file}: invalid YAML: ${err.message.split('\n')[0]}`);
  }
  return docs;
}

/** @internal shared with canary-manifest.ts */
export function selectTarget(docs: Doc[], target: ManifestTarget, file: string): Doc {
  const want = `${INFERENCE_SERVICE_API_VERSION} InferenceService ${target.namespace}/${target.name}`;
  const described = docs.map((doc) => ({
    doc,
    apiVersion: scalarString(doc.get('apiVersion')),
    kind: scalarString(doc.get('kind')),
    name: scalarString(doc.getIn(['metadata', 'name'])),
    namespace: scalarString(doc.getIn(['metadata', 'namespace'])),
  }));
  const matches = described.filter((d) => d.kind === 'InferenceService' && d.name === target.name);
  if (matches.length === 0) {
    const found = described.map((d) => `${d.apiVersion ?? '?'} ${d.kind ?? '?'} ${d.name ?? '?'}`).join(', ');
    throw new ManifestError(`${file}: expected ${want}, found ${found}`);
  }
  if (matches.length > 1) throw new ManifestError(`${file}: more than one InferenceService named ${target.name}`);
  const m = matches[0];
  if (m.apiVersion !== INFERENCE_SERVICE_API_VERSION) {
    throw new ManifestError(`${file}: InferenceService ${target.name} has apiVersion ${m.apiVersion ?? '(none)'}, expected ${INFERENCE_SERVICE_API_VERSION}`);
  }
  // A manifest without metadata.namespace is accepted: the namespace then comes from kustomize or the ArgoCD
  // Application's destination.
  if (m.namespace !== undefined && m.namespace !== target.namespace) {
    throw new ManifestError(`${file}: InferenceService ${target.name} is in namespace ${m.namespace}, the policy says ${target.namespace}`);
  }
  return m.doc;
}

function scalarString(v: unknown): string | undefined {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
}

function asStringMap(node: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? scalarString(pair.key.value) : undefined;
      const value = isScalar(pair.value) ? scalarString(pair.value.value) : undefined;
      if (key !== undefined && value !== undefined) out[key] = value;
    }
  }
  return out;
}

/** Kubernetes label values: ≤ 63 characters, alphanumerics with `-_.` inside. Other values go to annotations only. */
function labelValue(v: string | undefined): string | null {
  return v !== undefined && v.length <= 63 && /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/.test(v) ? v : null;
}

// ---- intended data ----

function applyToJs(root: unknown, path: Path, entries: Record<string, string | null>): void {
  let node = root as Record<string, unknown>;
  for (const key of path) {
    const next = node[key];
    if (next === undefined || next === null) {
      if (Object.values(entries).every((v) => v === null)) return;
      node[key] = {};
    }
    node = node[key] as Record<string, unknown>;
  }
  for (const [key, value] of Object.entries(entries)) {
    if (value === null) delete node[key];
    else node[key] = value;
  }
}

/** @internal shared with canary-manifest.ts */
export function sameData(text: string, expected: unknown[]): boolean {
  try {
    const docs = parseAllDocuments(text, { uniqueKeys: true });
    if (!Array.isArray(docs) || docs.some((d) => d.errors.length > 0)) return false;
    const actual: unknown[] = docs.map((d): unknown => d.toJS() as unknown);
    return isDeepStrictEqual(actual, expected);
  } catch {
    return false;
  }
}

// ---- splicing ----

/** Plan edits of the string entries of the map at `path`; false when the layout needs the fallback. */
function planMapEdit(src: string, doc: Doc, path: Path, entries: Record<string, string | null>, out: Splice[]): boolean {
  const node = doc.getIn(path, true) as Node | undefined;
  const wanted = Object.entries(entries);
  const nothingToAdd = wanted.every(([, v]) => v === null);

  if (isMap(node) && node.items.length > 0) {
    const missing = wanted.filter(([key, value]) => value !== null && !findPair(node, key));
    const removed = wanted.filter(([key, value]) => value === null && findPair(node, key));
    if (node.flow && (missing.length > 0 || removed.length > 0)) {
      // Adding to or removing from a flow map: re-render just that map.
      if (!node.range) return false;
      const edited = node.clone();
      for (const [key, value] of wanted) {
        if (value === null) edited.delete(key);
        else edited.set(key, stringScalar(value));
      }
      out.push({ start: node.range[0], end: node.range[1], text: stringify(edited, { lineWidth: 0 }).trimEnd() });
      return true;
    }
    for (const [key, value] of wanted) {
      const pair = findPair(node, key);
      if (!pair) continue;
      if (value === null) {
        const removal = removePair(src, pair);
        if (!removal) return false;
        out.push(removal);
        continue;
      }
      if (!isScalar(pair.value) || !pair.value.range) return false;
      if (pair.value.value === value) continue;
      const type = pair.value.type;
      if (type !== 'PLAIN' && type !== 'QUOTE_SINGLE' && type !== 'QUOTE_DOUBLE') return false;
      const [start, end] = pair.value.range;
      const rendered = renderValue(value, type);
      out.push({ start, end, text: start === end && src[start - 1] === ':' ? ` ${rendered}` : rendered });
    }
    if (missing.length > 0) {
      const indent = columnOf(src, keyStart(node.items[0]));
      const lines = missing.map(([key, value]) => `${' '.repeat(indent)}${renderKey(key)}: ${renderValue(value!, 'PLAIN')}\n`);
      out.push(insertAfter(src, node.items[node.items.length - 1], lines.join('')));
    }
    return true;
  }

  if (isMap(node) && node.flow) {
    // `{}`: re-render with the entries.
    if (!node.range) return false;
    const edited = node.clone();
    for (const [key, value] of wanted) if (value !== null) edited.set(key, stringScalar(value));
    out.push({ start: node.range[0], end: node.range[1], text: stringify(edited, { lineWidth: 0 }).trimEnd() });
    return true;
  }

  if (node !== undefined && !(isScalar(node) && node.value === null)) return false;
  if (nothingToAdd) return true;

  // The map is missing (or `key:` with no value): add it as a block under its parent.
  const parent = path.length > 1 ? (doc.getIn(path.slice(0, -1), true) as Node | undefined) : (doc.contents as Node | null);
  if (!isMap(parent) || parent.flow || parent.items.length === 0) return false;
  const parentIndent = columnOf(src, keyStart(parent.items[0]));
  const childIndent = parentIndent + indentUnit(src, doc);
  const block = wanted
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${' '.repeat(childIndent)}${renderKey(k)}: ${renderValue(v!, 'PLAIN')}\n`)
    .join('');
  if (node === undefined) {
    const key = path[path.length - 1];
    out.push(insertAfter(src, parent.items[parent.items.length - 1], `${' '.repeat(parentIndent)}${renderKey(key)}:\n${block}`));
    return true;
  }
  const owner = parent.items.find((p) => p.value === node);
  if (!owner || !isScalar(owner.key) || !owner.key.range) return false;
  const at = lineEndAfter(src, owner.key.range[1]);
  out.push({ start: at, end: at, text: (at === src.length && !src.endsWith('\n') ? '\n' : '') + block });
  return true;
}

/** @internal shared with canary-manifest.ts */
export function findPair(map: { items: Pair[] }, key: string): Pair | undefined {
  return map.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
}

/** @internal shared with canary-manifest.ts */
export function keyStart(pair: Pair): number {
  const key = pair.key as Node | null;
  if (!key || !key.range) throw new ManifestError('manifest: map key without a source position');
  return key.range[0];
}

/** Insert whole lines after the last line of `pair` (after its deepest last value, before trailing comments). */
/** @internal shared with canary-manifest.ts */
export function insertAfter(src: string, pair: Pair, lines: string): Splice {
  const end = contentEnd(pair);
  const at = src[end - 1] === '\n' ? end : lineEndAfter(src, end);
  const text = at === src.length && !src.endsWith('\n') ? `\n${lines}` : lines;
  return { start: at, end: at, text };
}

/** Remove the lines of a pair whose key starts its line; undefined when the key shares its line (e.g. `- key:`). */
/** @internal shared with canary-manifest.ts */
export function removePair(src: string, pair: Pair): Splice | undefined {
  const start = keyStart(pair);
  const lineStart = src.lastIndexOf('\n', start - 1) + 1;
  if (src.slice(lineStart, start).trim() !== '') return undefined;
  const end = contentEnd(pair);
  return { start: lineStart, end: src[end - 1] === '\n' ? end : lineEndAfter(src, end), text: '' };
}

function contentEnd(item: Pair | Node): number {
  if (isPairLike(item)) {
    const value = item.value as Node | null;
    if (value && value.range) return contentEnd(value);
    return (item.key as Node).range![1];
  }
  if ((isMap(item) || isSeq(item)) && !item.flow && item.items.length > 0) {
    return contentEnd(item.items[item.items.length - 1] as Pair | Node);
  }
  return item.range![1];
}

function isPairLike(item: Pair | Node): item is Pair {
  return !isScalar(item) && !isMap(item) && !isSeq(item) && 'key' in item && 'value' in item;
}

function lineEndAfter(src: string, pos: number): number {
  const nl = src.indexOf('\n', pos);
  return nl === -1 ? src.length : nl + 1;
}

/** @internal shared with canary-manifest.ts */
export function columnOf(src: string, pos: number): number {
  return pos - (src.lastIndexOf('\n', pos - 1) + 1);
}

/** The document's indentation step: the first nested block map's indent relative to its parent key. */
function indentUnit(src: string, doc: Doc): number {
  const root = doc.contents;
  if (isMap(root)) {
    for (const pair of root.items) {
      if (isMap(pair.value) && !pair.value.flow && pair.value.items.length > 0) {
        const unit = columnOf(src, keyStart(pair.value.items[0])) - columnOf(src, keyStart(pair));
        if (unit > 0) return unit;
      }
    }
  }
  return 2;
}

function stringScalar(value: string): Scalar {
  return new Scalar(value);
}

/**
 * Render a string scalar in the requested style. YAML 1.1 rules decide whether a plain scalar needs quotes,
 * so values such as `3`, `yes` or `on` stay strings for Kubernetes' YAML 1.1 parser too.
 */
function renderValue(value: string, type: 'PLAIN' | 'QUOTE_SINGLE' | 'QUOTE_DOUBLE'): string {
  const s = new Scalar(value);
  s.type = type;
  return stringify(s, { lineWidth: 0, version: '1.1' }).trimEnd();
}

function renderKey(key: string): string {
  return renderValue(key, 'PLAIN');
}

/** @internal shared with canary-manifest.ts */
export function applySplices(src: string, splices: Splice[]): string {
  // Back to front so earlier offsets stay valid; at one position, the edit planned first ends up first.
  const sorted = splices.map((s, i) => ({ ...s, i })).sort((a, b) => b.start - a.start || b.end - a.end || b.i - a.i);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].end > sorted[i - 1].start) throw new ManifestError('manifest: overlapping edits');
  }
  let out = src;
  for (const s of sorted) out = out.slice(0, s.start) + s.text + out.slice(s.end);
  return out;
}
