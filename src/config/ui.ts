/**
 * Settings of the approvals web page (/ui): the key that seals session cookies and whether cookies are marked
 * Secure regardless of how the request arrived (behind a TLS-terminating proxy the API only sees plain HTTP).
 * The key is a secret: it never appears in messages.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { parseEnv } from '../config.js';

const shape = {
  /**
   * Seals the /ui session cookie (AES-256-GCM, key derived with HKDF). At least 32 bytes; every API replica must
   * share it so a session opened on one is read on another. Unset: a random key per process (sessions end on
   * restart, and do not survive across replicas — fine for `npm start`, wrong for a deployment of several).
   */
  MODELGATE_UI_SESSION_KEY: z.string().refine((v) => Buffer.byteLength(v, 'utf8') >= 32, 'must be at least 32 bytes').optional(),
  /** true: always mark session cookies Secure (TLS ends at a proxy in front of the API). */
  MODELGATE_UI_SECURE_COOKIES: z.enum(['true', 'false']).default('false'),
  /** How long a page session lasts at most, whatever the credential says. */
  MODELGATE_UI_SESSION_TTL_MS: z.coerce.number().int().min(60_000).max(7 * 24 * 3600_000).default(8 * 3600_000),
};

export interface UiConfig {
  sessionKey: string;
  /** True when the key was generated at start (no MODELGATE_UI_SESSION_KEY): main.ts logs a warning. */
  sessionKeyGenerated: boolean;
  secureCookies: boolean;
  sessionTtlMs: number;
}

export function loadUiConfig(env: NodeJS.ProcessEnv = process.env): UiConfig {
  const c = parseEnv(shape, env);
  return {
    sessionKey: c.MODELGATE_UI_SESSION_KEY ?? randomBytes(32).toString('base64url'),
    sessionKeyGenerated: !c.MODELGATE_UI_SESSION_KEY,
    secureCookies: c.MODELGATE_UI_SECURE_COOKIES === 'true',
    sessionTtlMs: c.MODELGATE_UI_SESSION_TTL_MS,
  };
}
