/**
 * Which environment keys modelgate reads, for tests that check a deployment file (docker-compose.yml,
 * deploy/kubernetes) passes only keys some configuration module knows: a misspelt key is silently ignored by
 * the process, so it must fail a test instead.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/stack/embedded.js';

/** Every env key modelgate reads: the zod shapes in src/config.ts and src/config/*.ts (keys are UPPER_SNAKE properties). */
export function knownConfigKeys(): Set<string> {
  const files = [join(PROJECT_ROOT, 'src', 'config.ts')];
  const dir = join(PROJECT_ROOT, 'src', 'config');
  if (existsSync(dir)) files.push(...readdirSync(dir).filter((f) => f.endsWith('.ts')).map((f) => join(dir, f)));
  const keys = new Set<string>();
  for (const f of files) {
    for (const m of readFileSync(f, 'utf8').matchAll(/^\s+([A-Z][A-Z0-9_]+)\s*:/gm)) keys.add(m[1]);
  }
  return keys;
}

/**
 * Keys the deployment files already pass for a documented feature whose configuration key no module declares
 * yet, each with the reason. Keep this short: stalePendingConfigKeys() fails once a module declares one, so the
 * entry is removed as soon as it is no longer needed.
 */
export const PENDING_CONFIG_KEYS: Readonly<Record<string, string>> = {};

/** Of `keys`, those no config module reads and that are not pending; sorted, deduplicated. */
export function unknownConfigKeys(keys: Iterable<string>, known: Set<string> = knownConfigKeys()): string[] {
  return [...new Set(keys)].filter((k) => !known.has(k) && !(k in PENDING_CONFIG_KEYS)).sort();
}

/** Pending keys a config module now declares: remove them from PENDING_CONFIG_KEYS. */
export function stalePendingConfigKeys(known: Set<string> = knownConfigKeys()): string[] {
  return Object.keys(PENDING_CONFIG_KEYS).filter((k) => known.has(k));
}
