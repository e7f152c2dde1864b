/**
 * The issuer's authorization and token endpoints, from OpenID Connect Discovery
 * (`<issuer>/.well-known/openid-configuration`), fetched on first use and kept for an hour. A failed fetch is
 * not retried more often than the cooldown, so an identity-provider outage does not turn every sign-in click
 * into a request to it. The document must name the configured issuer exactly (Discovery §4.3) and, when it
 * lists PKCE methods, offer S256: otherwise sign-in fails closed.
 */

export interface OidcEndpoints {
  authorizationEndpoint: string;
  tokenEndpoint: string;
}

/** The issuer's metadata could not be had (network, status, or a document modelgate will not use). Message has no secrets. */
export class IssuerUnavailable extends Error {
  override name = 'IssuerUnavailable';
}

export interface DiscoveryOptions {
  timeoutMs?: number;
  cooldownMs?: number;
  maxAgeMs?: number;
  now?: () => number;
}

export class OidcDiscovery {
  private readonly url: URL;
  private readonly timeout: number;
  private readonly cooldown: number;
  private readonly maxAge: number;
  private readonly now: () => number;
  private cached?: { at: number; endpoints: OidcEndpoints };
  private inflight?: Promise<OidcEndpoints>;
  private failed?: { at: number; error: IssuerUnavailable };

  constructor(
    private readonly issuer: string,
    opts: DiscoveryOptions = {},
  ) {
    this.url = new URL(`${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`);
    this.timeout = opts.timeoutMs ?? 5_000;
    this.cooldown = opts.cooldownMs ?? 30_000;
    this.maxAge = opts.maxAgeMs ?? 3600_000;
    this.now = opts.now ?? Date.now;
  }

  async endpoints(): Promise<OidcEndpoints> {
    const now = this.now();
    if (this.cached && now - this.cached.at < this.maxAge) return this.cached.endpoints;
    if (this.failed && now - this.failed.at < this.cooldown) {
      // Still inside the cooldown: a stale document beats none; else the same error again.
      if (this.cached) return this.cached.endpoints;
      throw this.failed.error;
    }
    this.inflight ??= this.fetchEndpoints().then(
      (endpoints) => {
        this.cached = { at: this.now(), endpoints };
        this.failed = undefined;
        this.inflight = undefined;
        return endpoints;
      },
      (err: unknown) => {
        const error = err instanceof IssuerUnavailable ? err : new IssuerUnavailable(`OIDC discovery ${this.url.href} failed`);
        this.failed = { at: this.now(), error };
        this.inflight = undefined;
        if (this.cached) return this.cached.endpoints;
        throw error;
      },
    );
    return this.inflight;
  }

  private async fetchEndpoints(): Promise<OidcEndpoints> {
    let doc: unknown;
    try {
      const res = await fetch(this.url, { headers: { accept: 'application/json' }, redirect: 'manual', signal: AbortSignal.timeout(this.timeout) });
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new IssuerUnavailable(`OIDC discovery ${this.url.href} answered ${res.status}`);
      }
      doc = await res.json();
    } catch (err) {
      if (err instanceof IssuerUnavailable) throw err;
      throw new IssuerUnavailable(`OIDC discovery ${this.url.href} failed: ${err instanceof Error ? err.name : 'error'}`);
    }
    const meta = (typeof doc === 'object' && doc !== null ? doc : {}) as Record<string, unknown>;
    if (meta.issuer !== this.issuer) throw new IssuerUnavailable(`OIDC discovery ${this.url.href}: "issuer" is not the configured issuer`);
    const methods = meta.code_challenge_methods_supported;
    if (Array.isArray(methods) && !methods.includes('S256')) {
      throw new IssuerUnavailable(`OIDC discovery ${this.url.href}: the issuer does not offer PKCE S256`);
    }
    return {
      authorizationEndpoint: this.endpoint(meta.authorization_endpoint, 'authorization_endpoint'),
      tokenEndpoint: this.endpoint(meta.token_endpoint, 'token_endpoint'),
    };
  }

  /** An endpoint URL: https, or http only when the issuer itself is http (a local test or dev issuer). */
  private endpoint(value: unknown, what: string): string {
    let url: URL;
    try {
      url = new URL(String(value));
    } catch {
      throw new IssuerUnavailable(`OIDC discovery ${this.url.href}: no valid "${what}"`);
    }
    const allowHttp = this.url.protocol === 'http:';
    if (url.protocol !== 'https:' && !(allowHttp && url.protocol === 'http:')) {
      throw new IssuerUnavailable(`OIDC discovery ${this.url.href}: "${what}" must be https`);
    }
    return url.href;
  }
}
