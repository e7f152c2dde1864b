/**
 * The verification keys of attested decisions, handed to workflows as an activity result: the one channel a
 * Temporal client cannot write to. Keys come from the worker's configuration (MODELGATE_ATTESTATION_PUBLIC_KEYS).
 */
import type { VerificationKeys } from '../workflows/attestation.js';

export interface TrustDeps {
  /** Key id → raw Ed25519 public key (base64url); read on every call so a worker restart picks up rotations. */
  keys: () => VerificationKeys;
}

export function createTrustActivities(deps: TrustDeps) {
  return {
    async loadVerificationKeys(): Promise<{ keys: VerificationKeys }> {
      return Promise.resolve({ keys: { ...deps.keys() } });
    },
  };
}

export type TrustActivities = ReturnType<typeof createTrustActivities>;
