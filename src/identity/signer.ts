/**
 * The front door's half of attested decisions: it signs what a verified caller decided with an Ed25519 key only
 * the front door holds; workers hold the public keys (by key id, so keys can rotate). node:crypto signs; the
 * workflow verifies with a pure-JS implementation of the same algorithm (src/workflows/attestation.ts).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import type { Attestation, DecisionClaims } from './types.js';

/** How long a signed decision stays usable: long enough for a slow Temporal round trip, short against replay. */
export const ATTESTATION_TTL_MS = 5 * 60_000;

export type Unsigned = Omit<DecisionClaims, 'v' | 'issuedAt' | 'expiresAt' | 'nonce'>;

export class DecisionSigner {
  private readonly key: KeyObject;

  constructor(
    readonly kid: string,
    privateKey: KeyObject,
    private readonly now: () => number = Date.now,
  ) {
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('attestation signing key must be an Ed25519 key');
    this.key = privateKey;
  }

  sign(claims: Unsigned): Attestation {
    const issuedAt = this.now();
    const full: DecisionClaims = { v: 1, ...claims, issuedAt, expiresAt: issuedAt + ATTESTATION_TTL_MS, nonce: randomBytes(12).toString('base64url') };
    const payload = JSON.stringify(full);
    return { kid: this.kid, payload, sig: sign(null, Buffer.from(payload, 'utf8'), this.key).toString('base64url') };
  }

  /** The raw public key, base64url: what MODELGATE_ATTESTATION_PUBLIC_KEYS lists for this kid. */
  publicKey(): string {
    return rawPublicKey(createPublicKey(this.key));
  }
}

export function rawPublicKey(pub: KeyObject): string {
  const jwk = pub.export({ format: 'jwk' });
  if (!jwk.x) throw new Error('not an Ed25519 public key');
  return jwk.x;
}

/** A private key from PEM (PKCS#8) or the raw 32-byte seed in base64url. */
export function parsePrivateKey(text: string): KeyObject {
  const t = text.trim();
  if (t.startsWith('-----BEGIN')) return createPrivateKey(t);
  const seed = Buffer.from(t, 'base64url');
  if (seed.length !== 32) throw new Error('expected a PEM private key or a 32-byte base64url Ed25519 seed');
  // PKCS#8 wrapper of an Ed25519 seed: fixed 16-byte prefix (RFC 8410).
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
}

/** A new key pair: the seed (base64url, a secret) and the public key (base64url). */
export function generateSigningKey(): { seed: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  return { seed: der.subarray(der.length - 32).toString('base64url'), publicKey: rawPublicKey(publicKey) };
}
