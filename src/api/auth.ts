/**
 * Bearer tokens → identities. Tokens are hashed once at start and every presented token is compared against
 * every stored hash with timingSafeEqual (no early exit), so neither the match nor its position leaks timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiToken } from '../config/api.js';
import { HttpError } from './errors.js';

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

export class TokenAuth {
  private readonly entries: Array<{ hash: Buffer; identity: string }>;

  constructor(tokens: ApiToken[]) {
    this.entries = tokens.map((t) => ({ hash: digest(t.token), identity: t.identity }));
  }

  /** The identity for an `Authorization` header value; throws 401 `unauthorized` otherwise. */
  identify(authorization: string | undefined): string {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!m) throw new HttpError(401, 'unauthorized', 'missing or malformed Authorization header (expected "Bearer <token>")');
    const presented = digest(m[1]);
    let found: string | undefined;
    for (const e of this.entries) {
      if (timingSafeEqual(presented, e.hash) && found === undefined) found = e.identity;
    }
    if (found === undefined) throw new HttpError(401, 'unauthorized', 'unknown API token');
    return found;
  }
}
