/**
 * The verification keys of attested decisions, handed to workflows as an activity result: the one channel a
 * Temporal client cannot write to. Keys come from the worker's configuration (MODELGATE_ATTESTATION_PUBLIC_KEYS).
 * The promotion request in a lifecycle's start input is verified here too, with node:crypto: every lifecycle
 * does it once at start, and the pure-JS verifier the workflow needs for decisions costs memory per workflow.
 */
import { createPublicKey, verify } from 'node:crypto';
import { checkClaims, type VerificationKeys } from '../workflows/attestation.js';
import type { Attestation } from '../identity/types.js';
import type { LifecycleState } from '../workflows/definitions.js';

export interface TrustDeps {
  /** Key id → raw Ed25519 public key (base64url). */
  keys: () => VerificationKeys;
}

export interface LoadTrustInput {
  model: string;
  version: number;
  /** The start input's promotion request, if any, and when the lifecycle started (ms). */
  request?: Attestation;
  startedAt?: number;
  /** What the start request must be: `promote` (default) or `rollback` (a rollback run). */
  kind?: 'promote' | 'rollback';
}

function signatureValid(att: Attestation, keys: VerificationKeys): boolean {
  const x = keys[att.kid];
  if (!x || typeof att.payload !== 'string' || typeof att.sig !== 'string') return false;
  try {
    const pub = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
    return verify(null, Buffer.from(att.payload, 'utf8'), pub, Buffer.from(att.sig, 'base64url'));
  } catch {
    return false;
  }
}

export function createTrustActivities(deps: TrustDeps) {
  return {
    async loadVerificationKeys(
      input?: LoadTrustInput,
    ): Promise<{ keys: VerificationKeys; requestedBy?: LifecycleState['requestedBy']; requestReason?: string }> {
      const keys = { ...deps.keys() };
      const att = input?.request;
      if (!att || input.startedAt === undefined || !signatureValid(att, keys)) return Promise.resolve({ keys });
      const r = checkClaims(att.payload, { kind: input.kind ?? 'promote', model: input.model, version: input.version, now: input.startedAt });
      if (!r.ok) return Promise.resolve({ keys });
      const c = r.claims;
      return Promise.resolve({
        keys,
        requestedBy: { identity: c.identity, channel: c.channel, ...(c.onBehalfOf ? { onBehalfOf: c.onBehalfOf } : {}) },
        ...(c.reason !== undefined ? { requestReason: c.reason } : {}),
      });
    },
  };
}

export type TrustActivities = ReturnType<typeof createTrustActivities>;
