/**
 * Who is who in modelgate: identities of the directory, the scopes their credentials carry, and the signed
 * decisions (attestations) the front doors hand to the lifecycle. Plain types only: workflow code imports them.
 */

/** What a credential may do at the API: `approve` covers reject; a pipeline token gets `promote` only. */
export type Scope = 'promote' | 'approve' | 'retire' | 'read';

export const SCOPES: readonly Scope[] = ['promote', 'approve', 'retire', 'read'];

/** A resolved caller: the directory identity a credential maps to, and what this credential may do. */
export interface Caller {
  identity: string;
  groups: string[];
  kind: 'person' | 'service';
  scopes: Scope[];
  /** Service identities (pipelines) may name the person a promotion is for. */
  mayActOnBehalf: boolean;
  /** How the caller proved who they are, for the audit. */
  credential: 'token' | 'oidc' | 'slack' | 'github' | 'session';
}

/** A GitHub login, Slack user or MLflow user mapped through the directory. */
export interface IdentityRef {
  identity: string;
  groups: string[];
}

/**
 * `rollback`: a request to return an earlier Production version (signed like `promote`, needs `approve` scope).
 * `canary-continue` / `canary-abort`: the decision on a paused canary (`approve` scope; `round` = the pause id).
 */
export type DecisionKind = 'promote' | 'approve' | 'reject' | 'retire' | 'rollback' | 'canary-continue' | 'canary-abort';

/** What a front door signs. Serialized once to JSON; the signature covers exactly that string. */
export interface DecisionClaims {
  v: 1;
  kind: DecisionKind;
  model: string;
  version: number;
  identity: string;
  groups: string[];
  /** api, cli, slack, ui, kubeflow: the channel the person used. */
  channel: string;
  /** approve/reject: the approval round the person saw; a dropped round makes the attestation stale. canary-*: the pause id. */
  round?: number;
  /** GitOps: the pull-request head the person approved. */
  headSha?: string;
  comment?: string;
  reason?: string;
  /** promote by a service identity: the person the run was for (checked against the directory). */
  onBehalfOf?: string;
  /** Milliseconds since the epoch. */
  issuedAt: number;
  expiresAt: number;
  nonce: string;
}

/** A signed decision: `sig` is Ed25519 over the UTF-8 bytes of `payload` (the claims' JSON), by key `kid`. */
export interface Attestation {
  kid: string;
  payload: string;
  sig: string;
}
