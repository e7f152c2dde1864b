/**
 * Identities for tests: a directory of the usual people, a front-door signing key the test workers trust, and
 * drop-in versions of the client's start/approve/reject/retire that sign as a front door does. A test that
 * wants to forge something calls src/client.js directly (unsigned) or signs with OTHER_SIGNER.
 */
import type { Client } from '@temporalio/client';
import * as real from '../../src/client.js';
import { parseDirectory } from '../../src/identity/load.js';
import { DecisionSigner, generateSigningKey, parsePrivateKey } from '../../src/identity/signer.js';
import type { IdentityDirectory } from '../../src/identity/directory.js';
import type { PromotionRequest, TriggerSource } from '../../src/workflows/definitions.js';

export const TEST_IDENTITIES_YAML = `
identities:
  alice: { groups: [ml-leads], email: alice@example.com, slack: U01ALICE, github: alice-gh, mlflow: alice }
  bob: { groups: [ml-leads], email: bob@example.com, slack: [U02BOB, W02BOB], github: bob-gh, mlflow: bob }
  carol: { groups: [data-science], email: carol@example.com, slack: U04CAROL, github: carol-gh, mlflow: carol }
  dana: { groups: [data-science], email: dana@example.com, mlflow: dana }
  mallory: { email: mallory@example.com, slack: U03MALLORY, github: mallory-gh }
  kubeflow-pipeline: { kind: service, scopes: [promote, read], actOnBehalf: true }
`;

export function testDirectory(): IdentityDirectory {
  return parseDirectory(TEST_IDENTITIES_YAML, 'test identities');
}

const key = generateSigningKey();
export const TEST_KID = 'test-k1';
export const TEST_SIGNING_SEED = key.seed;
export const TEST_SIGNER = new DecisionSigner(TEST_KID, parsePrivateKey(key.seed));
export const TEST_KEYS = { [TEST_KID]: key.publicKey };
export const testSign: real.Sign = (claims) => TEST_SIGNER.sign(claims);

/** A signer whose key no worker trusts (for forgery tests), under the same key id or its own. */
export function otherSigner(kid = 'rogue'): DecisionSigner {
  return new DecisionSigner(kid, parsePrivateKey(generateSigningKey().seed));
}

/** Environment for loadApiConfig: the test directory and the test signing key, plus `extra`. */
export function testApiEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    MODELGATE_IDENTITIES: TEST_IDENTITIES_YAML,
    MODELGATE_ATTESTATION_SIGNING_KEY: TEST_SIGNING_SEED,
    MODELGATE_ATTESTATION_KEY_ID: TEST_KID,
    ...extra,
  };
}

const directory = testDirectory();
const groupsOf = (who: string) => directory.get(who)?.groups ?? [];

/** startLifecycle, with the promotion attested as requested by `trigger.by` (default dana, the registrant). */
export function startLifecycle(
  client: Client,
  model: string,
  version: number,
  trigger: { source: TriggerSource; by?: string },
  taskQueue?: string,
): Promise<real.StartResult> {
  const by = trigger.by ?? 'dana';
  const attestation = TEST_SIGNER.sign({ kind: 'promote', model, version, identity: by, groups: groupsOf(by), channel: trigger.source });
  return real.startLifecycle(client, model, version, { ...trigger, by, attestation }, taskQueue);
}

/** A later run of an ended lifecycle (rollback or again), requested by `by` and attested like the API does it. */
export function startRun(
  client: Client,
  model: string,
  version: number,
  request: PromotionRequest,
  by: string,
  taskQueue?: string,
): Promise<real.StartResult> {
  const kind = request.kind === 'rollback' ? 'rollback' : 'promote';
  const attestation = TEST_SIGNER.sign({ kind, model, version, identity: by, groups: groupsOf(by), channel: 'test', reason: request.reason });
  return real.startLifecycle(client, model, version, { source: 'test', by, attestation }, taskQueue, request);
}

export function approve(client: Client, model: string, version: number, input: real.DecisionBy): ReturnType<typeof real.approve> {
  return real.approve(client, model, version, { groups: groupsOf(input.by), via: 'test', ...input }, testSign);
}

export function reject(client: Client, model: string, version: number, input: real.DecisionBy & { reason: string }): ReturnType<typeof real.reject> {
  return real.reject(client, model, version, { groups: groupsOf(input.by), via: 'test', ...input }, testSign);
}

export function retire(client: Client, model: string, version: number, input: real.DecisionBy): ReturnType<typeof real.retire> {
  return real.retire(client, model, version, { groups: groupsOf(input.by), via: 'test', ...input }, testSign);
}
