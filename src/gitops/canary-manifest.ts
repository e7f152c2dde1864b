/**
 * The canary edit of the InferenceService manifest: `spec.predictor.canaryTrafficPercent` set to a step's
 * percent, removed at 100 (KServe then promotes the latest revision to all the traffic, as its docs
 * prescribe), 0 after a failed analysis. Spliced into the original text like manifest.ts does, so only that
 * one line changes; re-parsed and compared with the intended data, with the Document API as the fallback.
 */
import { isMap, isScalar } from 'yaml';
import { ManifestError } from './errors.js';
import {
  applySplices,
  columnOf,
  findPair,
  insertAfter,
  keyStart,
  parseDocs,
  removePair,
  sameData,
  selectTarget,
  type ManifestTarget,
  type Splice,
} from './manifest.js';

const PREDICTOR = ['spec', 'predictor'];
export const CANARY_FIELD = 'canaryTrafficPercent';

/** The canaryTrafficPercent the manifest sets, or undefined when the field is absent. */
export function readCanaryPercent(text: string, target: ManifestTarget, file = 'manifest'): number | undefined {
  const doc = selectTarget(parseDocs(text, file), target, file);
  const v: unknown = doc.getIn([...PREDICTOR, CANARY_FIELD]);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new ManifestError(`${file}: spec.predictor.${CANARY_FIELD} is not an integer`);
  return v;
}

/**
 * Set `canaryTrafficPercent` (0…99) or remove it (100). Returns the new file text; every other byte stays.
 * Throws ManifestError with a one-line reason (no predictor, bad percent).
 */
export function applyCanaryPercent(text: string, target: ManifestTarget, percent: number, file = 'manifest'): string {
  if (!Number.isInteger(percent) || percent < 0 || percent > 100) throw new ManifestError(`${file}: canary percent ${percent} is not an integer in 0…100`);
  const docs = parseDocs(text, file);
  const index = docs.indexOf(selectTarget(docs, target, file));
  const doc = docs[index];
  const predictor: unknown = doc.getIn(PREDICTOR, true);
  if (!isMap(predictor) || predictor.items.length === 0) throw new ManifestError(`${file}: spec.predictor is missing; a canary needs the predictor to set ${CANARY_FIELD} on`);
  const want = percent === 100 ? undefined : percent;

  const expected: unknown[] = docs.map((d): unknown => d.toJS() as unknown);
  const p = (expected[index] as { spec: { predictor: Record<string, unknown> } }).spec.predictor;
  if (want === undefined) delete p[CANARY_FIELD];
  else p[CANARY_FIELD] = want;

  const spliced = splice(text, predictor, want);
  if (spliced !== undefined && sameData(spliced, expected)) return spliced;
  // Fallback (flow maps, odd layouts): through the Document API; comments and key order survive.
  if (want === undefined) doc.deleteIn([...PREDICTOR, CANARY_FIELD]);
  else doc.setIn([...PREDICTOR, CANARY_FIELD], want);
  const rewritten = docs.map((d) => d.toString({ lineWidth: 0 })).join('');
  if (!sameData(rewritten, expected)) throw new ManifestError(`${file}: could not set ${CANARY_FIELD} without altering other data`);
  return rewritten;
}

function splice(src: string, predictor: Parameters<typeof findPair>[0] & { flow?: boolean }, want: number | undefined): string | undefined {
  if (predictor.flow) return undefined;
  const pair = findPair(predictor, CANARY_FIELD);
  const edits: Splice[] = [];
  if (pair) {
    if (want === undefined) {
      const removal = removePair(src, pair);
      if (!removal) return undefined;
      edits.push(removal);
    } else {
      if (!isScalar(pair.value) || !pair.value.range || pair.value.type !== 'PLAIN') return undefined;
      const [start, end] = pair.value.range;
      edits.push({ start, end, text: String(want) });
    }
  } else if (want !== undefined) {
    const indent = columnOf(src, keyStart(predictor.items[0]));
    edits.push(insertAfter(src, predictor.items[predictor.items.length - 1], `${' '.repeat(indent)}${CANARY_FIELD}: ${want}\n`));
  }
  return applySplices(src, edits);
}
