/**
 * OIDC / JWT bearer-token verification for the HTTP API (self-contained: the API's auth decides what to do with
 * the result). Signatures are checked against the issuer's JWKS (jose's remote key set: cached, refetched when a
 * token names a key id it does not know — key rotation — but at most once per cooldown), then `iss`, `aud`,
 * `exp` / `nbf` (with a clock tolerance) and the algorithm allow-list.
 *
 * Failures are `TokenRejected` with a short fixed `reason`. Neither the token nor any claim value is ever put
 * into an error (jose's own claim errors carry the whole payload, so they are never passed on as a cause).
 */
import {
  createRemoteJWKSet,
  errors as joseErrors,
  type CryptoKey,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
} from 'jose';
import { ConfigError } from '../config.js';

export interface OidcConfig {
  /** Expected `iss`, compared exactly. Without `jwksUrl` it must be an http(s) URL (discovery). */
  issuer: string;
  /** Expected `aud`: the token must name at least one of these. */
  audience: string | string[];
  /** The JWKS. If absent: `${issuer}/.well-known/openid-configuration` → `jwks_uri` (fetched once, cached). */
  jwksUrl?: string;
  /** Allow-list of JWS algorithms; default `['RS256', 'ES256', 'EdDSA', 'PS256']`. Only asymmetric ones. */
  algorithms?: string[];
  /** Leeway for `exp` / `nbf`, in seconds; default 30. */
  clockToleranceSec?: number;
  /** How long a fetched JWKS is used before it is fetched again; default 10 min. */
  jwksCacheMaxAgeMs?: number;
  /** Minimum time between refetches caused by an unknown `kid`; default 30 s. Also the back-off after a failed discovery. */
  jwksCooldownMs?: number;
  /** One claim to read scopes from (space-separated string or string array). Default: `scope` and `scp`. */
  scopeClaim?: string;
  /** Timeout of each discovery / JWKS request; default 5 s. */
  httpTimeoutMs?: number;
}

export interface VerifiedToken {
  /** `sub` (always present: tokens without one are rejected as malformed). */
  subject: string;
  /** `email`, when it is a string and `email_verified` is not `false`. */
  email?: string;
  /** Deduplicated, in claim order. */
  scopes: string[];
  issuer: string;
  /** From `exp` (always present: tokens without one are rejected as malformed). */
  expiresAt?: Date;
  /** The whole verified payload, for the caller's own mapping. Do not log it wholesale. */
  claims: Record<string, unknown>;
}

export type TokenRejectedReason =
  | 'expired'
  | 'wrong audience'
  | 'wrong issuer'
  | 'unknown key id'
  | 'bad signature'
  | 'malformed'
  | 'algorithm not allowed'
  | 'not yet valid'
  | 'issuer unreachable';

/**
 * A token that did not verify. `message` is `invalid token: <reason>`; safe to log and to return to the client.
 *
 * HTTP mapping (the integrator decides): every reason but `issuer unreachable` is the client's problem →
 * 401 with `WWW-Authenticate: Bearer error="invalid_token"`. `issuer unreachable` means modelgate could not get
 * the issuer's keys (network, timeout, non-200, malformed discovery/JWKS document): the token may well be valid,
 * so I would answer 503 `unavailable` (with `Retry-After`) — a 401 would make clients throw away good tokens or
 * re-login in a loop and would hide an identity-provider outage from monitoring as a burst of "bad tokens".
 * Either way it fails closed. Only for this reason `cause` is set (the network/HTTP error; never token data).
 */
export class TokenRejected extends Error {
  override name = 'TokenRejected';
  readonly code = 'invalid_token' as const;
  readonly reason: TokenRejectedReason;

  constructor(reason: TokenRejectedReason, options?: { cause?: unknown }) {
    super(`invalid token: ${reason}`, options);
    this.reason = reason;
  }
}

const DEFAULT_ALGORITHMS = ['RS256', 'ES256', 'EdDSA', 'PS256'];
/** Asymmetric JWS algorithms jose can verify against a JWKS. HS* / `none` are never allowed. */
const ASYMMETRIC_ALGORITHMS = new Set([
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519',
]);

const B64URL_SEGMENT = /^[A-Za-z0-9_-]+$/;

/**
 * True when the string has the shape of a compact JWS (`header.payload.signature`, base64url, the header a JSON
 * object) — so the API can send it to the verifier and compare anything else with its static tokens. The
 * signature segment may be empty (an `alg: none` token still looks like a JWT, and is then rejected by `verify`).
 * Says nothing about validity.
 */
export function looksLikeJwt(token: string): boolean {
  const parts = token.split('.');
  if (parts.length !== 3) return false;
  const [header, payload, signature] = parts as [string, string, string];
  if (!B64URL_SEGMENT.test(header) || !B64URL_SEGMENT.test(payload)) return false;
  if (signature !== '' && !B64URL_SEGMENT.test(signature)) return false;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed);
  } catch {
    return false;
  }
}

function httpUrl(value: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`OIDC ${what} is not a URL: ${value}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError(`OIDC ${what} must be http(s): ${value}`);
  return url;
}

function nonNegative(value: number | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) throw new ConfigError(`OIDC ${what} must be a non-negative number`);
  return value;
}

function scopeList(value: unknown): string[] {
  if (typeof value === 'string') return value.split(/\s+/).filter((s) => s !== '');
  if (Array.isArray(value)) return value.filter((s): s is string => typeof s === 'string' && s !== '');
  return [];
}

/** An error on the way to the issuer's keys (not a verdict about the token). */
class KeysUnavailable extends Error {}

export class OidcVerifier {
  private readonly issuer: string;
  private readonly options: JWTVerifyOptions;
  private readonly scopeClaims: string[];
  private readonly cacheMaxAge: number;
  private readonly cooldown: number;
  private readonly timeout: number;
  private readonly discoveryUrl?: URL;
  /** The key set once known (at construction with `jwksUrl`, after discovery without). */
  private jwks?: JWTVerifyGetKey;
  private discovering?: Promise<JWTVerifyGetKey>;
  private discoveryFailedAt = -Infinity;
  private discoveryError?: unknown;

  constructor(cfg: OidcConfig) {
    if (!cfg.issuer) throw new ConfigError('OIDC issuer is required');
    const audience = Array.isArray(cfg.audience) ? cfg.audience : [cfg.audience];
    if (audience.length === 0 || audience.some((a) => typeof a !== 'string' || a === '')) {
      throw new ConfigError('OIDC audience is required (one or more non-empty strings)');
    }
    const algorithms = cfg.algorithms ?? DEFAULT_ALGORITHMS;
    if (algorithms.length === 0) throw new ConfigError('OIDC algorithms must not be empty');
    const refused = algorithms.filter((a) => !ASYMMETRIC_ALGORITHMS.has(a));
    if (refused.length) {
      throw new ConfigError(`OIDC algorithms must be asymmetric JWS algorithms; not allowed: ${refused.join(', ')}`);
    }
    this.issuer = cfg.issuer;
    this.options = {
      issuer: cfg.issuer,
      audience,
      algorithms: [...algorithms],
      clockTolerance: nonNegative(cfg.clockToleranceSec, 30, 'clockToleranceSec'),
      requiredClaims: ['sub', 'exp'],
    };
    this.scopeClaims = cfg.scopeClaim ? [cfg.scopeClaim] : ['scope', 'scp'];
    this.cacheMaxAge = nonNegative(cfg.jwksCacheMaxAgeMs, 10 * 60_000, 'jwksCacheMaxAgeMs');
    this.cooldown = nonNegative(cfg.jwksCooldownMs, 30_000, 'jwksCooldownMs');
    this.timeout = Math.round(nonNegative(cfg.httpTimeoutMs, 5_000, 'httpTimeoutMs'));
    if (cfg.jwksUrl) {
      this.jwks = this.keySet(httpUrl(cfg.jwksUrl, 'JWKS URL'));
    } else {
      // OpenID Connect Discovery 1.0 §4: the issuer without its trailing slash + the well-known path.
      const base = httpUrl(cfg.issuer, 'issuer (needed for discovery without a JWKS URL)');
      this.discoveryUrl = new URL(`${base.href.replace(/\/+$/, '')}/.well-known/openid-configuration`);
    }
  }

  /** Verifies signature, issuer, audience, time claims and algorithm; throws `TokenRejected` otherwise. */
  async verify(jwt: string): Promise<VerifiedToken> {
    if (typeof jwt !== 'string' || !looksLikeJwt(jwt)) throw new TokenRejected('malformed');
    let payload: JWTPayload;
    try {
      const keys = await this.keys();
      payload = (await this.verifyWith(jwt, keys)).payload;
    } catch (err) {
      throw rejection(err);
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') throw new TokenRejected('malformed');
    const scopes = new Set<string>();
    for (const claim of this.scopeClaims) for (const s of scopeList(payload[claim])) scopes.add(s);
    const email = typeof payload.email === 'string' && payload.email_verified !== false ? payload.email : undefined;
    return {
      subject: payload.sub,
      ...(email !== undefined ? { email } : {}),
      scopes: [...scopes],
      issuer: this.issuer,
      ...(typeof payload.exp === 'number' ? { expiresAt: new Date(payload.exp * 1000) } : {}),
      claims: payload,
    };
  }

  private async verifyWith(jwt: string, keys: JWTVerifyGetKey) {
    try {
      return await jwtVerify(jwt, keys, this.options);
    } catch (err) {
      // A token without `kid` while the JWKS has several keys of its type: try each (jose's documented pattern).
      if (!(err instanceof joseErrors.JWKSMultipleMatchingKeys)) throw err;
      const candidates = err as joseErrors.JWKSMultipleMatchingKeys & AsyncIterable<CryptoKey>;
      for await (const key of candidates) {
        try {
          return await jwtVerify(jwt, key, this.options);
        } catch (inner) {
          if (inner instanceof joseErrors.JWSSignatureVerificationFailed) continue;
          throw inner;
        }
      }
      throw new joseErrors.JWSSignatureVerificationFailed();
    }
  }

  /** jose's remote key set, wrapped so that failures to fetch it are told apart from verdicts on the token. */
  private keySet(url: URL): JWTVerifyGetKey {
    const remote = createRemoteJWKSet(url, {
      cacheMaxAge: this.cacheMaxAge,
      cooldownDuration: this.cooldown,
      timeoutDuration: this.timeout,
    });
    return async (header, token) => {
      try {
        return await remote(header, token);
      } catch (err) {
        if (
          err instanceof joseErrors.JWKSNoMatchingKey ||
          err instanceof joseErrors.JWKSMultipleMatchingKeys ||
          // A header `alg` the key set cannot serve (e.g. HS256), should the allow-list ever let one through.
          err instanceof joseErrors.JOSENotSupported
        ) {
          throw err;
        }
        // Network error, timeout, non-200, unparsable or invalid JWKS.
        throw new KeysUnavailable('JWKS unavailable', { cause: err });
      }
    };
  }

  private async keys(): Promise<JWTVerifyGetKey> {
    if (this.jwks) return this.jwks;
    // A failed discovery is retried, but not more often than the cooldown (an outage must not turn every
    // request into a request to the issuer).
    if (Date.now() - this.discoveryFailedAt < this.cooldown) {
      throw new KeysUnavailable('OIDC discovery failed recently', { cause: this.discoveryError });
    }
    this.discovering ??= this.discover().then(
      (keys) => {
        this.jwks = keys;
        this.discovering = undefined;
        return keys;
      },
      (err: unknown) => {
        this.discoveryFailedAt = Date.now();
        this.discoveryError = err;
        this.discovering = undefined;
        throw err;
      },
    );
    return this.discovering;
  }

  private async discover(): Promise<JWTVerifyGetKey> {
    const url = this.discoveryUrl!;
    let doc: unknown;
    try {
      const res = await fetch(url, {
        headers: { accept: 'application/json' },
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeout),
      });
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new Error(`OIDC discovery ${url.href} answered ${res.status}`);
      }
      doc = await res.json();
    } catch (err) {
      throw new KeysUnavailable(`OIDC discovery ${url.href} failed`, { cause: err });
    }
    const meta = (typeof doc === 'object' && doc !== null ? doc : {}) as Record<string, unknown>;
    // Discovery §4.3: the document's issuer MUST be identical to the one it was fetched for.
    if (meta.issuer !== this.issuer) {
      throw new KeysUnavailable(`OIDC discovery ${url.href}: "issuer" does not match the configured issuer`);
    }
    if (typeof meta.jwks_uri !== 'string') {
      throw new KeysUnavailable(`OIDC discovery ${url.href}: no "jwks_uri"`);
    }
    let jwksUrl: URL;
    try {
      jwksUrl = httpUrl(meta.jwks_uri, 'discovered jwks_uri');
    } catch (err) {
      throw new KeysUnavailable(`OIDC discovery ${url.href}: bad "jwks_uri"`, { cause: err });
    }
    return this.keySet(jwksUrl);
  }
}

/** Any failure → a `TokenRejected` with a fixed reason; only `issuer unreachable` keeps a (token-free) cause. */
function rejection(err: unknown): TokenRejected {
  if (err instanceof TokenRejected) return err;
  if (err instanceof KeysUnavailable) return new TokenRejected('issuer unreachable', { cause: err });
  if (err instanceof joseErrors.JWTExpired) return new TokenRejected(err.claim === 'exp' ? 'expired' : 'malformed');
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.reason === 'check_failed') {
      if (err.claim === 'aud') return new TokenRejected('wrong audience');
      if (err.claim === 'iss') return new TokenRejected('wrong issuer');
      if (err.claim === 'nbf') return new TokenRejected('not yet valid');
    }
    return new TokenRejected('malformed'); // a required claim missing or of the wrong type
  }
  if (err instanceof joseErrors.JWKSNoMatchingKey) return new TokenRejected('unknown key id');
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return new TokenRejected('bad signature');
  if (err instanceof joseErrors.JOSEAlgNotAllowed || err instanceof joseErrors.JOSENotSupported) {
    return new TokenRejected('algorithm not allowed');
  }
  return new TokenRejected('malformed');
}
