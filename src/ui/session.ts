/**
 * Page sessions as a sealed cookie, not a server-side store: the API runs as several replicas behind one
 * Service, and a cookie sealed with a shared key (MODELGATE_UI_SESSION_KEY) is read by whichever replica gets the
 * next request. The cookie is AES-256-GCM over JSON `{ identity, via, scopes, expiresAt, csrf }`: the browser
 * can neither read nor alter it, and a cookie sealed for another purpose (e.g. the OIDC login state) cannot be
 * replayed as a session because the purpose is the AEAD's additional data.
 *
 * CSRF: every state-changing request must carry the session's csrf secret (form field `_csrf` or header
 * `x-csrf-token`) and, when the browser sends one, an Origin of this very host. SameSite=Lax alone is not enough
 * (same-site subdomains, old browsers), so the token is checked on every POST.
 *
 * Scopes travel in the session: they are those of the credential the person signed in with (a read-only token
 * gives a read-only session), exactly as at the API. Groups are looked up again at each decision.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Scope } from '../identity/types.js';
import { HttpError } from '../api/errors.js';

export const SESSION_COOKIE = 'modelgate_ui';
/** The cookie path: the session is never sent to /v1 (the API authenticates bearer tokens only). */
export const COOKIE_PATH = '/ui';
export const CSRF_FIELD = '_csrf';
export const CSRF_HEADER = 'x-csrf-token';

export type SessionVia = 'oidc' | 'token';

export interface Session {
  identity: string;
  via: SessionVia;
  /** Scopes of the credential used to sign in. */
  scopes: Scope[];
  /** Milliseconds since the epoch. */
  expiresAt: number;
  issuedAt: number;
  /** Per-session CSRF secret (base64url, 32 random bytes). */
  csrf: string;
}

export interface SessionInput {
  identity: string;
  via: SessionVia;
  scopes: Scope[];
  /** Capped at now + the configured TTL (a long-lived API token does not make a week-long page session). */
  expiresAt: number;
}

export interface UiSessionOptions {
  /** MODELGATE_UI_SESSION_KEY (≥ 32 bytes). */
  key: string;
  /** MODELGATE_UI_SECURE_COOKIES: Secure even when the request arrived over plain HTTP (TLS at a proxy). */
  secureCookies: boolean;
  ttlMs: number;
  now?: () => number;
}

const SESSION_PURPOSE = 'session';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Seals and opens the session cookie (and, for ui-oidc, other short-lived sealed values). */
export class UiSessions {
  private readonly aesKey: Buffer;
  private readonly now: () => number;

  constructor(private readonly opts: UiSessionOptions) {
    if (Buffer.byteLength(opts.key, 'utf8') < 32) throw new Error('UI session key must be at least 32 bytes');
    this.aesKey = Buffer.from(hkdfSync('sha256', Buffer.from(opts.key, 'utf8'), Buffer.alloc(0), 'modelgate-ui-cookie-v1', 32));
    this.now = opts.now ?? Date.now;
  }

  /** Sets a fresh session cookie (new CSRF secret: a login never keeps a pre-login token). */
  establishSession(request: FastifyRequest, reply: FastifyReply, input: SessionInput): Session {
    const now = this.now();
    const session: Session = {
      identity: input.identity,
      via: input.via,
      scopes: [...input.scopes],
      issuedAt: now,
      expiresAt: Math.min(input.expiresAt, now + this.opts.ttlMs),
      csrf: randomBytes(32).toString('base64url'),
    };
    const maxAge = Math.max(1, Math.floor((session.expiresAt - now) / 1000));
    this.setCookie(request, reply, SESSION_COOKIE, this.seal(SESSION_PURPOSE, session), maxAge);
    return session;
  }

  /** The valid, unexpired session of the request, or undefined (missing, tampered, other key, expired). */
  readSession(request: FastifyRequest): Session | undefined {
    const raw = readCookie(request, SESSION_COOKIE);
    if (!raw) return undefined;
    const s = this.open<Session>(SESSION_PURPOSE, raw);
    if (!s || typeof s.identity !== 'string' || typeof s.csrf !== 'string' || typeof s.expiresAt !== 'number' || !Array.isArray(s.scopes)) return undefined;
    if (s.expiresAt <= this.now()) return undefined;
    return s;
  }

  clearSession(request: FastifyRequest, reply: FastifyReply): void {
    this.setCookie(request, reply, SESSION_COOKIE, '', 0);
  }

  /** The token pages put in forms (and ui.js in the x-csrf-token header). */
  csrfToken(session: Session): string {
    return session.csrf;
  }

  /**
   * Throws 403 `csrf_rejected` unless the request carries this session's token and, when the browser sent an
   * Origin (or, lacking it, a Referer), that origin is this host. Call before doing anything on a POST.
   */
  checkCsrf(request: FastifyRequest, session: Session): void {
    if (!sameOrigin(request)) throw new HttpError(403, 'csrf_rejected', 'cross-site request refused (Origin is not this site)');
    const body = request.body as Record<string, unknown> | undefined;
    const fromBody = body && typeof body === 'object' ? body[CSRF_FIELD] : undefined;
    const fromHeader = request.headers[CSRF_HEADER];
    const sent = typeof fromBody === 'string' ? fromBody : typeof fromHeader === 'string' ? fromHeader : '';
    const a = Buffer.from(sent, 'utf8');
    const b = Buffer.from(session.csrf, 'utf8');
    if (a.length !== b.length || !timingSafeEqual(a, b)) {
      throw new HttpError(403, 'csrf_rejected', 'missing or wrong CSRF token (reload the page and try again)');
    }
  }

  /** Seal any JSON value for `purpose` (ui-oidc: PKCE verifier + state cookie). */
  seal(purpose: string, value: unknown): string {
    const iv = randomBytes(IV_BYTES);
    const c = createCipheriv('aes-256-gcm', this.aesKey, iv);
    c.setAAD(Buffer.from(purpose, 'utf8'));
    const body = Buffer.concat([c.update(JSON.stringify(value), 'utf8'), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), body]).toString('base64url');
  }

  /** The value sealed for `purpose`, or undefined when it was tampered with, sealed for something else or by another key. */
  open<T>(purpose: string, sealed: string): T | undefined {
    try {
      const buf = Buffer.from(sealed, 'base64url');
      if (buf.length <= IV_BYTES + TAG_BYTES) return undefined;
      const d = createDecipheriv('aes-256-gcm', this.aesKey, buf.subarray(0, IV_BYTES));
      d.setAAD(Buffer.from(purpose, 'utf8'));
      d.setAuthTag(buf.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      const text = Buffer.concat([d.update(buf.subarray(IV_BYTES + TAG_BYTES)), d.final()]).toString('utf8');
      return JSON.parse(text) as T;
    } catch {
      return undefined;
    }
  }

  /** Set-Cookie with the house flags: HttpOnly, SameSite=Lax, Path=/ui, Secure over TLS or when configured. */
  setCookie(request: FastifyRequest, reply: FastifyReply, name: string, value: string, maxAgeSeconds: number): void {
    const secure = this.opts.secureCookies || request.protocol === 'https';
    const parts = [`${name}=${value}`, `Path=${COOKIE_PATH}`, 'HttpOnly', 'SameSite=Lax', `Max-Age=${maxAgeSeconds}`];
    if (secure) parts.push('Secure');
    const prev = reply.getHeader('set-cookie');
    const list = prev === undefined ? [] : Array.isArray(prev) ? prev.map(String) : [String(prev)];
    void reply.header('set-cookie', [...list, parts.join('; ')]);
  }
}

/** One cookie's value from the Cookie header (first occurrence), undefined when absent. */
export function readCookie(request: FastifyRequest, name: string): string | undefined {
  const header = request.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** True unless the browser says the request came from another origin. No Origin and no Referer: not a browser form post from elsewhere. */
export function sameOrigin(request: FastifyRequest): boolean {
  const origin = request.headers.origin ?? request.headers.referer;
  if (!origin) return true;
  if (origin === 'null') return false;
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}
