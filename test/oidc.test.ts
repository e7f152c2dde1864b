/**
 * The OIDC bearer-token verifier against a local identity-provider double (node:http on 127.0.0.1:0): a discovery
 * document and a JWKS whose keys the test swaps, with request counters. Keys are generated and tokens signed
 * with jose. No Temporal or MLflow needed.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { CompactSign, exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { looksLikeJwt, OidcVerifier, TokenRejected, type OidcConfig } from '../src/identity/oidc.js';
import { ConfigError } from '../src/config.js';

interface TestKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
}

async function makeKey(kid: string, alg: 'RS256' | 'EdDSA'): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicKey, jwk };
}

/** The identity provider: discovery at `<issuer>/.well-known/openid-configuration`, keys at `/keys`. */
class IdpDouble {
  private server?: Server;
  base = '';
  keys: JWK[] = [];
  jwksRequests = 0;
  discoveryRequests = 0;
  /** Answer status for both documents (200 = serve them). */
  status = 200;
  /** What the discovery document says its issuer is (default: the real one). */
  advertisedIssuer?: string;

  get issuer(): string {
    return `${this.base}/realms/ml`;
  }
  get jwksUrl(): string {
    return `${this.base}/keys`;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const send = (body: unknown) => {
        if (this.status !== 200) {
          res.writeHead(this.status, { 'content-type': 'text/plain' }).end('unavailable');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      };
      if (req.url === '/keys') {
        this.jwksRequests++;
        send({ keys: this.keys });
      } else if (req.url === '/realms/ml/.well-known/openid-configuration') {
        this.discoveryRequests++;
        send({ issuer: this.advertisedIssuer ?? this.issuer, jwks_uri: this.jwksUrl, response_types_supported: ['code'] });
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  reset(keys: JWK[]): void {
    this.keys = keys;
    this.jwksRequests = 0;
    this.discoveryRequests = 0;
    this.status = 200;
    this.advertisedIssuer = undefined;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

const AUDIENCE = 'modelgate';
const now = () => Math.floor(Date.now() / 1000);

interface SignOptions {
  kid?: string | null; // null: no kid header
  alg?: string;
  issuer?: string;
  audience?: string | string[];
  subject?: string | null;
  exp?: number | null;
  nbf?: number;
  claims?: JWTPayload;
}

async function sign(key: TestKey, issuer: string, o: SignOptions = {}): Promise<string> {
  const header: { alg: string; kid?: string } = { alg: o.alg ?? key.alg };
  if (o.kid !== null) header.kid = o.kid ?? key.kid;
  const jwt = new SignJWT(o.claims ?? {})
    .setProtectedHeader(header)
    .setIssuer(o.issuer ?? issuer)
    .setAudience(o.audience ?? AUDIENCE)
    .setIssuedAt();
  if (o.subject !== null) jwt.setSubject(o.subject ?? 'user-123');
  if (o.exp !== null) jwt.setExpirationTime(o.exp ?? now() + 300);
  if (o.nbf !== undefined) jwt.setNotBefore(o.nbf);
  return jwt.sign(key.privateKey);
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

async function rejected(p: Promise<unknown>, reason: string): Promise<TokenRejected> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof TokenRejected, `expected TokenRejected, got ${String(err)}`);
    assert.equal(err.reason, reason);
    assert.equal(err.code, 'invalid_token');
    assert.equal(err.message, `invalid token: ${reason}`);
    return err;
  }
  assert.fail(`expected rejection '${reason}', but the token verified`);
}

describe('OIDC bearer-token verifier', () => {
  const idp = new IdpDouble();
  let rsa: TestKey; // in the JWKS
  let ed: TestKey; // in the JWKS
  let stranger: TestKey; // never in the JWKS

  const verifier = (cfg: Partial<OidcConfig> = {}) =>
    new OidcVerifier({ issuer: idp.issuer, audience: AUDIENCE, jwksUrl: idp.jwksUrl, ...cfg });

  before(async () => {
    await idp.start();
    [rsa, ed, stranger] = await Promise.all([makeKey('rsa-1', 'RS256'), makeKey('ed-1', 'EdDSA'), makeKey('rsa-x', 'RS256')]);
  });
  after(() => idp.stop());
  beforeEach(() => idp.reset([rsa.jwk, ed.jwk]));

  it('when a valid RS256 token carries a scope string and an email, then subject, email, scopes and expiry are returned', async () => {
    const exp = now() + 600;
    const token = await sign(rsa, idp.issuer, {
      exp,
      claims: { email: 'alice@example.com', scope: 'openid promote  read', groups: ['ml'] },
    });
    const v = await verifier().verify(token);
    assert.equal(v.subject, 'user-123');
    assert.equal(v.email, 'alice@example.com');
    assert.deepEqual(v.scopes, ['openid', 'promote', 'read']);
    assert.equal(v.issuer, idp.issuer);
    assert.equal(v.expiresAt?.getTime(), exp * 1000);
    assert.deepEqual(v.claims.groups, ['ml']);
  });

  it('when a valid EdDSA token carries `scp` (array or string), then those are the scopes; an unverified email is dropped', async () => {
    const v = verifier();
    const arr = await v.verify(
      await sign(ed, idp.issuer, { claims: { scp: ['approve', 'retire', 7], email: 'bob@example.com', email_verified: false } }),
    );
    assert.deepEqual(arr.scopes, ['approve', 'retire']);
    assert.equal(arr.email, undefined);
    const str = await v.verify(await sign(ed, idp.issuer, { claims: { scp: 'promote approve', scope: 'approve read' } }));
    assert.deepEqual(str.scopes, ['approve', 'read', 'promote']);
  });

  it('when scopeClaim is set, then only that claim is read, and a token naming one of several audiences verifies', async () => {
    const token = await sign(rsa, idp.issuer, {
      audience: ['other-api', 'modelgate-api'],
      claims: { permissions: ['promote', 'read'], scope: 'retire' },
    });
    const v = await verifier({ scopeClaim: 'permissions', audience: ['modelgate-api', 'modelgate'] }).verify(token);
    assert.deepEqual(v.scopes, ['promote', 'read']);
  });

  it('when the audience is another one, then it is rejected as wrong audience and the error carries no token or claim', async () => {
    const token = await sign(rsa, idp.issuer, { audience: 'billing-api', subject: 'secret-subject-42' });
    const err = await rejected(verifier().verify(token), 'wrong audience');
    const everything = `${err.message} ${err.stack} ${JSON.stringify(err)} ${String(err.cause)}`;
    for (const leak of ['billing-api', 'secret-subject-42', token.split('.')[1], token.split('.')[2]]) {
      assert.ok(!everything.includes(leak), 'the rejection must not echo token contents');
    }
    assert.equal(err.cause, undefined);
  });

  it('when the issuer is another one, then it is rejected as wrong issuer', async () => {
    const token = await sign(rsa, idp.issuer, { issuer: `${idp.base}/realms/other` });
    await rejected(verifier().verify(token), 'wrong issuer');
  });

  it('when exp is past by more than the clock tolerance, then it is rejected as expired; within it, it verifies', async () => {
    const v = verifier({ clockToleranceSec: 30 });
    await rejected(v.verify(await sign(rsa, idp.issuer, { exp: now() - 60 })), 'expired');
    assert.equal((await v.verify(await sign(rsa, idp.issuer, { exp: now() - 10 }))).subject, 'user-123');
    await rejected(verifier({ clockToleranceSec: 0 }).verify(await sign(rsa, idp.issuer, { exp: now() - 10 })), 'expired');
  });

  it('when nbf is in the future beyond the tolerance, then it is rejected as not yet valid; within it, it verifies', async () => {
    const v = verifier({ clockToleranceSec: 30 });
    await rejected(v.verify(await sign(rsa, idp.issuer, { nbf: now() + 120 })), 'not yet valid');
    assert.equal((await v.verify(await sign(rsa, idp.issuer, { nbf: now() + 10 }))).subject, 'user-123');
  });

  it('when the token has no sub or no exp, or is not a JWT at all, then it is rejected as malformed', async () => {
    const v = verifier();
    await rejected(v.verify(await sign(rsa, idp.issuer, { subject: null })), 'malformed');
    await rejected(v.verify(await sign(rsa, idp.issuer, { exp: null })), 'malformed');
    await rejected(v.verify('not-a-jwt'), 'malformed');
    // Correctly signed, but the payload is no claims object.
    const notClaims = await new CompactSign(new TextEncoder().encode('[1,2]'))
      .setProtectedHeader({ alg: 'RS256', kid: rsa.kid })
      .sign(rsa.privateKey);
    await rejected(v.verify(notClaims), 'malformed');
  });

  it('when the kid is not in the JWKS even after a refetch, then it is rejected as unknown key id', async () => {
    const v = verifier({ jwksCooldownMs: 0 });
    await v.verify(await sign(rsa, idp.issuer));
    assert.equal(idp.jwksRequests, 1);
    await rejected(v.verify(await sign(stranger, idp.issuer)), 'unknown key id');
    assert.equal(idp.jwksRequests, 2, 'an unknown kid refetches the JWKS once (cooldown 0)');
  });

  it('when a token is signed by a foreign key but names a kid that is in the JWKS, then it is rejected as bad signature', async () => {
    const forged = await sign(stranger, idp.issuer, { kid: rsa.kid });
    await rejected(verifier().verify(forged), 'bad signature');
    // The same for a tampered payload under a genuine signature.
    const [h, , s] = (await sign(rsa, idp.issuer, { subject: 'alice' })).split('.');
    const payload = b64({ iss: idp.issuer, aud: AUDIENCE, sub: 'admin', exp: now() + 300 });
    await rejected(verifier().verify(`${h}.${payload}.${s}`), 'bad signature');
  });

  it('when alg is none, HS256 keyed with the public key, or outside the allow-list, then it is rejected as algorithm not allowed', async () => {
    const claims = { iss: idp.issuer, aud: AUDIENCE, sub: 'admin', exp: now() + 300 };
    const none = `${b64({ alg: 'none', kid: rsa.kid })}.${b64(claims)}.`;
    assert.ok(looksLikeJwt(none));
    await rejected(verifier().verify(none), 'algorithm not allowed');

    const pem = new TextEncoder().encode(await exportSPKI(rsa.publicKey));
    const hs = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: rsa.kid }).sign(pem);
    await rejected(verifier().verify(hs), 'algorithm not allowed');

    await rejected(verifier({ algorithms: ['RS256'] }).verify(await sign(ed, idp.issuer)), 'algorithm not allowed');
    assert.equal(idp.jwksRequests, 0, 'a refused algorithm is decided before any key is fetched');
  });

  it('when the allow-list names a symmetric algorithm or none, then the verifier refuses to be built', () => {
    for (const algorithms of [['HS256'], ['RS256', 'none'], []]) {
      assert.throws(() => verifier({ algorithms }), ConfigError, JSON.stringify(algorithms));
    }
    assert.throws(() => new OidcVerifier({ issuer: 'not a url', audience: AUDIENCE }), ConfigError);
  });

  it('when a token has no kid and the JWKS holds several keys of its type, then the one that matches verifies it', async () => {
    const rsa2 = await makeKey('rsa-2', 'RS256');
    idp.reset([rsa.jwk, rsa2.jwk, ed.jwk]);
    const v = verifier();
    assert.equal((await v.verify(await sign(rsa2, idp.issuer, { kid: null }))).subject, 'user-123');
    assert.equal((await v.verify(await sign(rsa, idp.issuer, { kid: null }))).subject, 'user-123');
    await rejected(v.verify(await sign(stranger, idp.issuer, { kid: null })), 'bad signature');
  });

  it('when the issuer rotates to a new key set, then (discovered, after the cooldown) the new kid verifies and the retired one is refused', async () => {
    const v = new OidcVerifier({ issuer: idp.issuer, audience: AUDIENCE, jwksCooldownMs: 50 });
    await v.verify(await sign(rsa, idp.issuer));
    assert.deepEqual([idp.discoveryRequests, idp.jwksRequests], [1, 1]);

    const next = await makeKey('rsa-2026', 'RS256');
    idp.keys = [next.jwk];
    await sleep(80); // past the cooldown
    const v2 = await v.verify(await sign(next, idp.issuer, { claims: { scope: 'promote' } }));
    assert.deepEqual(v2.scopes, ['promote']);
    assert.deepEqual([idp.discoveryRequests, idp.jwksRequests], [1, 2], 'one refetch, discovery not repeated');

    await sleep(80);
    await rejected(v.verify(await sign(rsa, idp.issuer)), 'unknown key id');
  });

  it('when unknown kids arrive within the cooldown, then the JWKS is not refetched and they are refused', async () => {
    const v = verifier({ jwksCooldownMs: 60_000 });
    await v.verify(await sign(rsa, idp.issuer));
    const next = await makeKey('rsa-new', 'RS256');
    idp.keys = [rsa.jwk, next.jwk];
    for (let i = 0; i < 5; i++) await rejected(v.verify(await sign(next, idp.issuer)), 'unknown key id');
    assert.equal(idp.jwksRequests, 1);
  });

  it('when many tokens are verified, at once and one after another, then discovery and the JWKS are fetched once', async () => {
    const v = new OidcVerifier({ issuer: idp.issuer, audience: AUDIENCE });
    const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => sign(i % 2 ? rsa : ed, idp.issuer, { subject: `u${i}` })));
    const first = await Promise.all(tokens.map((t) => v.verify(t)));
    assert.deepEqual(first.map((t) => t.subject), tokens.map((_, i) => `u${i}`));
    for (const t of tokens) await v.verify(t);
    assert.deepEqual([idp.discoveryRequests, idp.jwksRequests], [1, 1]);
  });

  it('when the JWKS or discovery cannot be had, then it is rejected as issuer unreachable, and it recovers once the issuer answers', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/keys`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const token = await sign(rsa, idp.issuer);

    const err = await rejected(verifier({ jwksUrl: deadUrl }).verify(token), 'issuer unreachable');
    assert.ok(err.cause instanceof Error);

    idp.status = 503;
    await rejected(verifier().verify(token), 'issuer unreachable'); // JWKS 503

    const patient = new OidcVerifier({ issuer: idp.issuer, audience: AUDIENCE, jwksCooldownMs: 60_000 });
    await rejected(patient.verify(token), 'issuer unreachable'); // discovery 503
    await rejected(patient.verify(token), 'issuer unreachable'); // within the back-off: not asked again
    assert.equal(idp.discoveryRequests, 1);

    const eager = new OidcVerifier({ issuer: idp.issuer, audience: AUDIENCE, jwksCooldownMs: 0 });
    await rejected(eager.verify(token), 'issuer unreachable');
    idp.status = 200;
    assert.equal((await eager.verify(token)).subject, 'user-123', 'a failed discovery is not cached for good');
    assert.equal(idp.discoveryRequests, 3);

    idp.advertisedIssuer = 'https://evil.example/realms/ml';
    await rejected(new OidcVerifier({ issuer: idp.issuer, audience: AUDIENCE }).verify(token), 'issuer unreachable');
  });

  it('when looksLikeJwt is asked, then only three base64url segments with a JSON header count', async () => {
    assert.equal(looksLikeJwt(await sign(rsa, idp.issuer)), true);
    for (const s of ['mg_0123456789abcdef0123', 'a.b.c', 'eyJhbGciOiJub25lIn0.e30.sig.extra', '', 'eyJhbGciOiJub25lIn0..sig', 'eyJ+.e30.x']) {
      assert.equal(looksLikeJwt(s), false, s);
    }
  });
});
