/**
 * Settings of who-is-who: the identity directory, the front door's attestation signing key, the workers'
 * verification keys, and the OIDC issuer. Secret values (signing key, tokens) never appear in messages.
 */
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError, parseEnv } from '../config.js';
import { IdentityDirectory } from '../identity/directory.js';
import { DirectoryError, loadDirectoryFile, parseDirectory } from '../identity/load.js';
import { DecisionSigner, parsePrivateKey } from '../identity/signer.js';
import type { VerificationKeys } from '../workflows/attestation.js';

export const DEFAULT_IDENTITIES_FILE = 'policies/identities.yaml';

const shape = {
  /** The directory file; the default path may be absent (then nobody is known and every caller is refused). */
  MODELGATE_IDENTITIES_FILE: z.string().min(1).optional(),
  /** The directory as YAML text, instead of a file (a ConfigMap value, tests). */
  MODELGATE_IDENTITIES: z.string().min(1).optional(),
  /** The front door's Ed25519 private key: PEM (PKCS#8) or a 32-byte base64url seed. A secret. */
  MODELGATE_ATTESTATION_SIGNING_KEY: z.string().min(1).optional(),
  MODELGATE_ATTESTATION_KEY_ID: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, . _ - (at most 64)').default('k1'),
  /** `kid=<base64url raw public key>,…`: what workers trust. Several ids = rotation in progress. */
  MODELGATE_ATTESTATION_PUBLIC_KEYS: z.string().min(1).optional(),
  MODELGATE_OIDC_ISSUER: z.string().url().optional(),
  MODELGATE_OIDC_AUDIENCE: z.string().min(1).optional(),
  MODELGATE_OIDC_JWKS_URL: z.string().url().optional(),
  MODELGATE_OIDC_JWKS_COOLDOWN_MS: z.coerce.number().int().min(0).default(30_000),
};

export interface OidcSettings {
  issuer: string;
  audience: string[];
  jwksUrl?: string;
  jwksCooldownMs: number;
}

export interface IdentityConfig {
  directory: IdentityDirectory;
  signer?: DecisionSigner;
  verificationKeys: VerificationKeys;
  oidc?: OidcSettings;
}

function parseKeys(text: string): VerificationKeys {
  const out: VerificationKeys = {};
  text
    .split(/[,\n]/)
    .map((p) => p.trim())
    .filter(Boolean)
    .forEach((part, i) => {
      const eq = part.indexOf('=');
      const kid = part.slice(0, eq).trim();
      const key = part.slice(eq + 1).trim();
      if (eq <= 0 || !/^[A-Za-z0-9._-]{1,64}$/.test(kid)) throw new ConfigError(`MODELGATE_ATTESTATION_PUBLIC_KEYS: entry ${i + 1} is not kid=<public key>`);
      if (Buffer.from(key, 'base64url').length !== 32) {
        throw new ConfigError(`MODELGATE_ATTESTATION_PUBLIC_KEYS: key ${kid} is not a 32-byte base64url Ed25519 public key`);
      }
      out[kid] = key;
    });
  return out;
}

export function loadIdentityConfig(env: NodeJS.ProcessEnv = process.env): IdentityConfig {
  const c = parseEnv(shape, env);
  let directory: IdentityDirectory;
  try {
    if (c.MODELGATE_IDENTITIES) directory = parseDirectory(c.MODELGATE_IDENTITIES, 'MODELGATE_IDENTITIES');
    else if (c.MODELGATE_IDENTITIES_FILE || existsSync(DEFAULT_IDENTITIES_FILE)) {
      directory = loadDirectoryFile(c.MODELGATE_IDENTITIES_FILE ?? DEFAULT_IDENTITIES_FILE);
    } else directory = new IdentityDirectory([], [], DEFAULT_IDENTITIES_FILE);
  } catch (err) {
    if (err instanceof DirectoryError) throw new ConfigError(`${c.MODELGATE_IDENTITIES ? 'MODELGATE_IDENTITIES' : 'MODELGATE_IDENTITIES_FILE'}: ${err.message}`);
    throw err;
  }
  let signer: DecisionSigner | undefined;
  if (c.MODELGATE_ATTESTATION_SIGNING_KEY) {
    try {
      signer = new DecisionSigner(c.MODELGATE_ATTESTATION_KEY_ID, parsePrivateKey(c.MODELGATE_ATTESTATION_SIGNING_KEY));
    } catch {
      throw new ConfigError('MODELGATE_ATTESTATION_SIGNING_KEY: expected an Ed25519 private key (PEM) or a 32-byte base64url seed');
    }
  }
  const verificationKeys = c.MODELGATE_ATTESTATION_PUBLIC_KEYS ? parseKeys(c.MODELGATE_ATTESTATION_PUBLIC_KEYS) : {};
  // One process holding both halves (npm start): it trusts its own signing key.
  if (signer && !verificationKeys[signer.kid]) verificationKeys[signer.kid] = signer.publicKey();
  if (signer && verificationKeys[signer.kid] !== signer.publicKey()) {
    throw new ConfigError(`MODELGATE_ATTESTATION_PUBLIC_KEYS: key ${signer.kid} is not the public half of MODELGATE_ATTESTATION_SIGNING_KEY`);
  }
  let oidc: OidcSettings | undefined;
  if (c.MODELGATE_OIDC_ISSUER) {
    if (!c.MODELGATE_OIDC_AUDIENCE) throw new ConfigError('MODELGATE_OIDC_AUDIENCE: required when MODELGATE_OIDC_ISSUER is set');
    oidc = {
      issuer: c.MODELGATE_OIDC_ISSUER,
      audience: c.MODELGATE_OIDC_AUDIENCE.split(',').map((a) => a.trim()).filter(Boolean),
      jwksUrl: c.MODELGATE_OIDC_JWKS_URL,
      jwksCooldownMs: c.MODELGATE_OIDC_JWKS_COOLDOWN_MS,
    };
  }
  return { directory, signer, verificationKeys, oidc };
}
