/**
 * A unified diff of two small text files (an InferenceService manifest is tens of lines), as `git diff` shows
 * it: `--- a/<path>`, `+++ b/<path>`, hunks with 3 lines of context. Pure; an LCS table is fine at this size,
 * and the dry run refuses files too large for it rather than spend the API's CPU.
 */

const CONTEXT = 3;
/** Lines per side beyond which no diff is drawn (the table is lines², kept well under a few MB). */
export const MAX_DIFF_LINES = 2000;

type Op = { kind: ' ' | '-' | '+'; line: string; a: number; b: number };

export function unifiedDiff(before: string, after: string, path: string): string {
  if (before === after) return '';
  const a = splitLines(before);
  const b = splitLines(after);
  if (a.length > MAX_DIFF_LINES || b.length > MAX_DIFF_LINES) return `(${path} has more than ${MAX_DIFF_LINES} lines; no diff drawn)`;
  const ops = editScript(a, b);
  const hunks: string[] = [];
  let i = 0;
  while (i < ops.length) {
    if (ops[i].kind === ' ') {
      i++;
      continue;
    }
    // A hunk: from CONTEXT lines before this change to CONTEXT lines after the last change within reach.
    const start = Math.max(0, i - CONTEXT);
    let end = i;
    for (let j = i; j < ops.length; j++) {
      if (ops[j].kind !== ' ') end = j;
      else if (j - end > 2 * CONTEXT) break;
    }
    const stop = Math.min(ops.length, end + CONTEXT + 1);
    const slice = ops.slice(start, stop);
    const aLen = slice.filter((o) => o.kind !== '+').length;
    const bLen = slice.filter((o) => o.kind !== '-').length;
    const aStart = aLen ? slice.find((o) => o.kind !== '+')!.a + 1 : slice[0].a;
    const bStart = bLen ? slice.find((o) => o.kind !== '-')!.b + 1 : slice[0].b;
    hunks.push(`@@ -${aStart},${aLen} +${bStart},${bLen} @@`, ...slice.map((o) => `${o.kind}${o.line}`));
    i = stop;
  }
  return [`--- a/${path}`, `+++ b/${path}`, ...hunks].join('\n') + '\n';
}

function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function editScript(a: string[], b: string[]): Op[] {
  const n = a.length;
  const m = b.length;
  // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  }
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) ops.push({ kind: ' ', line: a[i++], a: i - 1, b: j++ });
    // Removals before additions on a tie, as git shows a changed line.
    else if (i < n && (j === m || lcs[i + 1][j] >= lcs[i][j + 1])) ops.push({ kind: '-', line: a[i++], a: i - 1, b: j });
    else ops.push({ kind: '+', line: b[j++], a: i, b: j - 1 });
  }
  return ops;
}
