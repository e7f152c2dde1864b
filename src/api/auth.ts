/**
 * Bearer credentials → callers of the identity directory. Static API tokens are looked up by their sha256 (the
 * directory stores hashes only; the lookup reveals nothing about other tokens), OIDC/JWT bearer tokens are
 * verified against the issuer's keys and mapped by subject or email. An unmapped caller is refused (401) and
 * the attempt is logged without the credential.
 */
import 'fastify';
import { tokenHash, type IdentityDirectory } from '../identity/directory.js';
import { isScope } from '../identity/directory.js';
import type { Caller, Scope } from '../identity/types.js';
import { HttpError } from './errors.js';
import { looksLikeJwt, TokenRejected } from '../identity/oidc.js';

/** What the API needs of an OIDC verifier (src/identity/oidc.ts). */
export interface JwtVerifier {
  verify(jwt: string): Promise<{ subject: string; email?: string; scopes: string[] }>;
}

export class Authenticator {
  constructor(
    private readonly directory: IdentityDirectory,
    private readonly oidc?: JwtVerifier,
  ) {}

  /** The caller for an `Authorization` header value; throws 401 `unauthorized` otherwise. */
  async identify(authorization: string | undefined): Promise<Caller> {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!m) throw new HttpError(401, 'unauthorized', 'missing or malformed Authorization header (expected "Bearer <token>")');
    const token = m[1];
    if (this.oidc && looksLikeJwt(token)) {
      let verified: Awaited<ReturnType<JwtVerifier['verify']>>;
      try {
        verified = await this.oidc.verify(token);
      } catch (err) {
        const reason = err instanceof TokenRejected ? err.reason : 'invalid token';
        // The issuer being down says nothing about the token: a retryable 503, not a 401 that makes clients re-login.
        if (reason === 'issuer unreachable') throw new HttpError(503, 'unavailable', 'the identity provider cannot be reached to verify the token; try again');
        throw new HttpError(401, 'invalid_token', `bearer token refused: ${reason}`);
      }
      const scopes = verified.scopes.filter(isScope);
      const caller = this.directory.byOidc(verified.subject, verified.email, scopes);
      if (!caller) throw new HttpError(401, 'unknown_identity', 'the token is valid but its subject is not linked to any identity in the modelgate directory');
      return caller;
    }
    const caller = this.directory.byTokenHash(tokenHash(token));
    if (!caller) throw new HttpError(401, 'unauthorized', 'unknown API token');
    return caller;
  }
}

/** 403 `insufficient_scope` unless the caller's credential carries `scope`. */
export function requireScope(caller: Caller, scope: Scope): void {
  if (!caller.scopes.includes(scope)) {
    throw new HttpError(403, 'insufficient_scope', `${caller.identity}'s credential does not carry the "${scope}" scope (it has: ${caller.scopes.join(', ') || 'none'})`);
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified caller, set by the bearer-token hook of the /v1 routes. */
    caller: Caller;
  }
}
