/**
 * Verification of signed decisions inside workflow code. @noble/ed25519 is small, pure JavaScript with no I/O
 * or randomness on the verify path, so it is deterministic in the workflow sandbox (the larger @noble/curves
 * doubled the bundle and the memory of every parked lifecycle, docs/PERFORMANCE.md); the keys come from the
 * worker (an activity result), never from anything a Temporal client can send.
 */
import * as ed25519 from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';

// The synchronous verify needs a SHA-512; set once when the bundle loads (pure, deterministic).
ed25519.hashes.sha512 = sha512;
import type { Attestation, DecisionClaims, DecisionKind } from '../identity/types.js';

/** Key id → raw 32-byte Ed25519 public key, base64url. */
export type VerificationKeys = Record<string, string>;

export type AttestationCheck = { ok: true; claims: DecisionClaims } | { ok: false; message: string; unknownKey?: true };

/** What the decision must be about; anything else in the claims makes the attestation count for nothing. */
export interface Expected {
  kind: DecisionKind;
  model: string;
  version: number;
  /** Workflow time, milliseconds. */
  now: number;
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** base64url (padding optional) → bytes; undefined on any character outside the alphabet. */
export function fromBase64Url(s: string): Uint8Array | undefined {
  const clean = s.replace(/=+$/, '');
  if (clean.length % 4 === 1) return undefined;
  const out = new Uint8Array(Math.floor((clean.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let j = 0;
  for (const ch of clean) {
    const v = B64URL.indexOf(ch);
    if (v < 0) return undefined;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[j++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

function isClaims(x: unknown): x is DecisionClaims {
  const c = x as Partial<DecisionClaims> | null;
  return (
    !!c &&
    c.v === 1 &&
    typeof c.kind === 'string' &&
    typeof c.model === 'string' &&
    typeof c.version === 'number' &&
    typeof c.identity === 'string' &&
    c.identity.length > 0 &&
    Array.isArray(c.groups) &&
    typeof c.channel === 'string' &&
    typeof c.issuedAt === 'number' &&
    typeof c.expiresAt === 'number'
  );
}

/** Signature, key id, decision kind, model, version and validity window; round and head are the caller's to check. */
export function verifyAttestation(att: Attestation | undefined, keys: VerificationKeys | undefined, want: Expected): AttestationCheck {
  if (!att || typeof att.kid !== 'string' || typeof att.payload !== 'string' || typeof att.sig !== 'string') {
    return { ok: false, message: 'the decision carries no attestation from a modelgate front door' };
  }
  if (att.payload.length > 8192) return { ok: false, message: 'the attestation is too large' };
  const key = keys?.[att.kid];
  if (!key) return { ok: false, unknownKey: true, message: `the attestation is signed with key id "${att.kid.slice(0, 64)}", which this lifecycle does not trust` };
  const pub = fromBase64Url(key);
  const sig = fromBase64Url(att.sig);
  if (!pub || pub.length !== 32 || !sig || sig.length !== 64) return { ok: false, message: 'the attestation signature is malformed' };
  let valid = false;
  try {
    valid = ed25519.verify(sig, new TextEncoder().encode(att.payload), pub, { zip215: false });
  } catch {
    valid = false;
  }
  if (!valid) return { ok: false, message: 'the attestation signature does not verify' };
  return checkClaims(att.payload, want);
}

/** The part after the signature: what the claims are about and whether they are still valid at `want.now`. */
export function checkClaims(payload: string, want: Expected): AttestationCheck {
  let claims: unknown;
  try {
    claims = JSON.parse(payload);
  } catch {
    return { ok: false, message: 'the attestation payload is not JSON' };
  }
  if (!isClaims(claims)) return { ok: false, message: 'the attestation payload is incomplete' };
  if (claims.kind !== want.kind) return { ok: false, message: `the attestation is for a ${claims.kind} decision, not ${want.kind}` };
  if (claims.model !== want.model || claims.version !== want.version) {
    return { ok: false, message: `the attestation is for ${claims.model} version ${claims.version}` };
  }
  if (want.now > claims.expiresAt) return { ok: false, message: `the attestation expired at ${new Date(claims.expiresAt).toISOString()}` };
  // A little skew between the front door's clock and the workflow's is tolerated, not a token from the future.
  if (claims.issuedAt > want.now + 60_000) return { ok: false, message: 'the attestation is issued in the future' };
  return { ok: true, claims };
}
