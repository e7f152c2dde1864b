/**
 * `npm start` without an identity provider: an attestation signing key and one API token per identity of the
 * directory, made once under the data folder (mode 0600) and reused, so the README walkthrough can sign in as
 * the demo people with `MODELGATE_TOKEN_FILE=.data/tokens/<name>`. Production passes its own keys and tokens.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSigningKey } from '../identity/signer.js';
import type { IdentityDirectory } from '../identity/directory.js';

function readOrCreate(path: string, make: () => string): string {
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const value = make();
  writeFileSync(path, `${value}\n`, { mode: 0o600 });
  return value;
}

/** Sets the env keys the API and worker read; returns the token file of each identity. */
export function ensureDemoCredentials(env: NodeJS.ProcessEnv, dataDir: string, directory: IdentityDirectory): Record<string, string> {
  const secrets = join(dataDir, 'secrets');
  mkdirSync(secrets, { recursive: true, mode: 0o700 });
  env.MODELGATE_ATTESTATION_SIGNING_KEY ??= readOrCreate(join(secrets, 'attestation.key'), () => generateSigningKey().seed);
  env.MODELGATE_GITOPS_MARKER_SECRET ??= readOrCreate(join(secrets, 'gitops-marker.key'), () => randomBytes(32).toString('base64url'));
  if (env.MODELGATE_API_TOKENS || env.MODELGATE_API_TOKENS_FILE) return {};
  const dir = join(dataDir, 'tokens');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files: Record<string, string> = {};
  const pairs: string[] = [];
  for (const name of directory.names()) {
    const file = join(dir, name);
    pairs.push(`${readOrCreate(file, () => `mg_${randomBytes(24).toString('base64url')}`)}=${name}`);
    files[name] = file;
  }
  const all = join(secrets, 'api-tokens');
  writeFileSync(all, `${pairs.join('\n')}\n`, { mode: 0o600 });
  env.MODELGATE_API_TOKENS_FILE = all;
  return files;
}
