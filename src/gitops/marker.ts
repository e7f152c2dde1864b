/**
 * The marker that proves modelgate opened a pull request: an HTML comment in the PR body (and in the branch
 * commit's message) carrying an HMAC-SHA256, keyed with the workers' secret (MODELGATE_GITOPS_MARKER_SECRET),
 * over what the change is — kind, branch, base, model, version, manifest path, the SHA-256 of the manifest the
 * change sets and the storage URI it points at (plus, for a revert, the merge it reverts).
 *
 * The marker is visible to anyone who can read the repository; that is fine: without the secret nobody can
 * write a valid one, and it never contains the secret. A retried activity that finds an existing branch or PR
 * adopts it only when the marker verifies against the manifest at the PR's head and the storage URI modelgate
 * computes itself (from MLflow for a promotion), so a branch someone created in advance for the next version,
 * or a PR whose body or manifest was edited, is refused instead of adopted.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * `retire`: the change that takes the InferenceService off a retired version (back to the previous one, or
 * removed). `canary`: one traffic step of a progressive rollout (canaryTrafficPercent), or its abort at 0 %.
 */
export type MarkerKind = 'promotion' | 'revert' | 'retire' | 'canary';

/** What the MAC covers; nothing of it is read back from PR text. */
export interface MarkerFacts {
  kind: MarkerKind;
  branch: string;
  baseBranch: string;
  model: string;
  version: number;
  manifestPath: string;
  /** The whole manifest file the change sets (at the branch head); '' when the change deletes the file. */
  content: string;
  /** What the manifest points KServe at (for a revert: the restored URI; a retire that removes it: ''). */
  storageUri: string;
  /** What the base branch served when the change was opened (the rollback target of a promotion). */
  previousStorageUri?: string;
  /** Revert only: the commit being reverted. */
  mergeSha?: string;
}

/** The parsed comment. `previousStorageUri` and `mergeSha` are only trusted once `mac` verified over them. */
export interface PullRequestMarker {
  v: 2;
  branch: string;
  kind: MarkerKind;
  model: string;
  version: number;
  previousStorageUri?: string;
  mergeSha?: string;
  /** Hex HMAC-SHA256 over the facts. */
  mac: string;
}

const OPEN = '<!-- modelgate: ';
const MARKER = /<!-- modelgate: (\{.*?\}) -->/g;
/** Shorter secrets are refused: the MAC is only as strong as its key. */
export const MIN_MARKER_SECRET_LENGTH = 16;

export function markerMac(secret: string, f: MarkerFacts): string {
  const canonical = JSON.stringify([
    'modelgate.gitops-marker.v2',
    f.kind,
    f.branch,
    f.baseBranch,
    f.model,
    f.version,
    f.manifestPath,
    createHash('sha256').update(f.content, 'utf8').digest('hex'),
    f.storageUri,
    f.previousStorageUri ?? null,
    f.mergeSha ?? null,
  ]);
  return createHmac('sha256', secret).update(canonical, 'utf8').digest('hex');
}

/** The marker comment for a change modelgate renders. */
export function renderMarker(secret: string, f: MarkerFacts): string {
  const m: PullRequestMarker = {
    v: 2,
    branch: f.branch,
    kind: f.kind,
    model: f.model,
    version: f.version,
    ...(f.previousStorageUri !== undefined ? { previousStorageUri: f.previousStorageUri } : {}),
    ...(f.mergeSha !== undefined ? { mergeSha: f.mergeSha } : {}),
    mac: markerMac(secret, f),
  };
  return `${OPEN}${escapeJson(m)} -->`;
}

/**
 * The fixed text every marker of `branch` starts with (the branch is the first field), so a plain git
 * `log --grep --fixed-strings` finds the commit of exactly this branch and not one of `<branch>-revert`.
 */
export function markerPrefix(branch: string): string {
  return `${OPEN}${escapeJson({ v: 2, branch }).slice(0, -1)},`;
}

/** The marker of `branch` in a PR body or commit message (the last one when a body quotes several). */
export function parseMarker(text: string | undefined, branch: string): PullRequestMarker | undefined {
  if (!text) return undefined;
  let found: PullRequestMarker | undefined;
  for (const m of text.matchAll(MARKER)) {
    try {
      const v = JSON.parse(m[1]) as Partial<PullRequestMarker>;
      if (
        v.v === 2 &&
        v.branch === branch &&
        (v.kind === 'promotion' || v.kind === 'revert' || v.kind === 'retire' || v.kind === 'canary') &&
        typeof v.model === 'string' &&
        typeof v.version === 'number' &&
        typeof v.mac === 'string' &&
        /^[0-9a-f]{64}$/.test(v.mac) &&
        (v.previousStorageUri === undefined || typeof v.previousStorageUri === 'string') &&
        (v.mergeSha === undefined || typeof v.mergeSha === 'string')
      ) {
        found = v as PullRequestMarker;
      }
    } catch {
      // Hand-edited JSON: not a marker.
    }
  }
  return found;
}

/**
 * True when `marker` was written by a holder of `secret` for exactly these facts. The caller supplies the facts
 * it trusts (its own model/version/branch, the manifest at the head, the storage URI it computed); only
 * `previousStorageUri` is taken from the marker, and it is covered by the MAC.
 */
export function verifyMarker(secret: string, marker: PullRequestMarker | undefined, f: Omit<MarkerFacts, 'previousStorageUri'>): boolean {
  if (!marker || marker.kind !== f.kind || marker.branch !== f.branch || marker.model !== f.model || marker.version !== f.version) return false;
  if (f.kind === 'revert' && marker.mergeSha !== f.mergeSha) return false;
  const want = Buffer.from(markerMac(secret, { ...f, previousStorageUri: marker.previousStorageUri }), 'hex');
  const got = Buffer.from(marker.mac, 'hex');
  return got.length === want.length && timingSafeEqual(got, want);
}

/** The merge seal facts: which branch was merged into which base, at which head, on top of which commit. */
export interface MergeFacts {
  branch: string;
  baseBranch: string;
  headSha: string;
  /** The merge commit's first parent (the base before the merge), so a seal cannot be replayed later. */
  parentSha: string;
}

/** Value of the `Modelgate-Seal:` trailer of a plain git merge made by modelgate. */
export function mergeSeal(secret: string, f: MergeFacts): string {
  return createHmac('sha256', secret).update(JSON.stringify(['modelgate.gitops-merge.v1', f.branch, f.baseBranch, f.headSha, f.parentSha]), 'utf8').digest('hex');
}

export function verifyMergeSeal(secret: string, value: string | undefined, f: MergeFacts): boolean {
  if (!value || !/^[0-9a-f]{64}$/.test(value)) return false;
  const want = Buffer.from(mergeSeal(secret, f), 'hex');
  return timingSafeEqual(Buffer.from(value, 'hex'), want);
}

/** JSON with `<`, `>` escaped, so a value cannot close the HTML comment early. */
function escapeJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c').replace(/>/g, '\\u003e');
}
