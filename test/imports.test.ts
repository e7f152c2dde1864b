/**
 * The shape of the shipped code's imports, read from the TypeScript sources: the image compiles src/ and
 * scripts/ alone (the Dockerfile copies no test/ or bench/), so neither may import from those; and the
 * runtime import graph of src/ and scripts/ has no cycle (worker.ts is a library, worker-main.ts the process).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { PROJECT_ROOT } from '../src/stack/embedded.js';

interface Import {
  target: string;
  /** `import type …` / `export type …`: erased by tsc, so no runtime edge. */
  typeOnly: boolean;
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Relative imports of one file (static, re-exports, side-effect and dynamic), resolved to .ts paths. */
function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8');
  const found: Import[] = [];
  const add = (spec: string, typeOnly: boolean) => {
    if (spec.startsWith('.')) found.push({ target: resolve(dirname(file), spec).replace(/\.js$/, '.ts'), typeOnly });
  };
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)(\s+type)?\b[^;'"]*?\bfrom\s*['"]([^'"]+)['"]/g)) add(m[2], !!m[1]);
  for (const m of text.matchAll(/(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g)) add(m[1], false);
  for (const m of text.matchAll(/\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g)) add(m[1], false);
  return found;
}

const shipped = ['src', 'scripts'].flatMap((d) => sources(join(PROJECT_ROOT, d)));
const rel = (p: string) => relative(PROJECT_ROOT, p);

describe('imports of the shipped code', () => {
  test('when src/ and scripts/ are compiled without test/ and bench/ (as the image is), then none of them imports from there', () => {
    assert.ok(shipped.some((f) => rel(f) === join('scripts', 'demo-register.ts')), 'the sources were found');
    const outside = shipped.flatMap((f) =>
      importsOf(f)
        .map((i) => rel(i.target))
        .filter((t) => t.startsWith('test/') || t.startsWith('bench/'))
        .map((t) => `${rel(f)} → ${t}`),
    );
    assert.deepEqual(outside, []);
  });

  test('when the runtime imports of src/ and scripts/ are followed, then no module reaches itself again', () => {
    const graph = new Map(shipped.map((f) => [f, importsOf(f).filter((i) => !i.typeOnly).map((i) => i.target)]));
    assert.ok(graph.get(join(PROJECT_ROOT, 'src', 'worker-main.ts'))?.includes(join(PROJECT_ROOT, 'src', 'worker.ts')), 'the graph has edges');
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (f: string, path: string[]) => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') {
        cycles.push([...path.slice(path.indexOf(f)), f].map(rel).join(' → '));
        return;
      }
      state.set(f, 'open');
      for (const t of graph.get(f) ?? []) visit(t, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of graph.keys()) visit(f, []);
    assert.deepEqual(cycles, []);
  });
});
