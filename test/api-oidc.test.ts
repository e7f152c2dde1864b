/**
 * OIDC bearer tokens at the API: a local JWKS server, tokens signed with jose, and the real fastify server with
 * the identity directory. A valid token maps by subject or email and carries only the scopes it was given; a
 * token with the wrong audience, expired, with an unknown key id or a bad signature is 401; a rotated key verifies.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { buildServer, type ApiServer } from '../src/api/server.js';
import { loadApiConfig } from '../src/config/api.js';
import { createLogger } from '../src/observability/log.js';
import { testApiEnv } from './support/identity.js';

interface Key {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function key(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

describe('OIDC bearer tokens at the API', () => {
  let jwks: Server;
  let served: JWK[] = [];
  let issuer: string;
  let app: ApiServer;
  let k1: Key;
  let k2: Key;
  const AUD = 'modelgate-api';

  before(async () => {
    [k1, k2] = await Promise.all([key('k1'), key('k2')]);
    served = [k1.jwk];
    jwks = createServer((req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: served })));
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    issuer = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}`;
    app = buildServer({
      // /v1/whoami never reaches Temporal.
      client: {} as Client,
      config: loadApiConfig(
        testApiEnv({
          MODELGATE_OIDC_ISSUER: issuer,
          MODELGATE_OIDC_AUDIENCE: AUD,
          MODELGATE_OIDC_JWKS_URL: `${issuer}/keys`,
          MODELGATE_OIDC_JWKS_COOLDOWN_MS: '0',
        }),
      ),
      logger: createLogger('silent'),
    });
    await app.ready();
  });
  after(async () => {
    await app?.close();
    await new Promise((r) => jwks?.close(r));
  });

  const token = (k: Key, claims: Record<string, unknown>, opts: { aud?: string; exp?: string | number } = {}) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: k.kid })
      .setIssuer(issuer)
      .setAudience(opts.aud ?? AUD)
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? '5m')
      .sign(k.privateKey);
  const whoami = async (jwt: string) => {
    const r = await app.inject({ method: 'GET', url: '/v1/whoami', headers: { authorization: `Bearer ${jwt}` } });
    return { status: r.statusCode, body: r.json<Record<string, unknown>>() };
  };

  it('when a valid token names a directory email, then the caller is that identity with only the token\'s scopes', async () => {
    const r = await whoami(await token(k1, { sub: 'idp|123', email: 'alice@example.com', scope: 'read approve openid' }));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual([r.body.identity, r.body.scopes, r.body.credential], ['alice', ['read', 'approve'], 'oidc']);
  });

  it('when a valid token names nobody in the directory, then 401 unknown_identity', async () => {
    const r = await whoami(await token(k1, { sub: 'idp|999', email: 'eve@example.com', scope: 'approve' }));
    assert.deepEqual([r.status, r.body.code], [401, 'unknown_identity']);
  });

  it('when the token has the wrong audience, is expired, has an unknown kid or a bad signature, then 401 invalid_token', async () => {
    const claims = { sub: 'idp|1', email: 'bob@example.com', scope: 'approve' };
    const forged = await token(k2, claims); // k2 is not served yet: unknown kid
    const badSig = (await token(k1, claims)).replace(/\.[^.]+$/, `.${Buffer.from('x'.repeat(64)).toString('base64url')}`);
    const cases = {
      'wrong audience': await token(k1, claims, { aud: 'someone-else' }),
      expired: await token(k1, claims, { exp: Math.floor(Date.now() / 1000) - 3600 }),
      'unknown key id': forged,
      'bad signature': badSig,
    };
    for (const [why, jwt] of Object.entries(cases)) {
      const r = await whoami(jwt);
      assert.deepEqual([r.status, r.body.code], [401, 'invalid_token'], why);
      assert.match(String(r.body.message), new RegExp(why), why);
      assert.ok(!String(r.body.message).includes(jwt.slice(0, 20)), 'no token echoed');
    }
  });

  it('when the issuer rotates to a new key, then tokens signed with it verify', async () => {
    served = [k1.jwk, k2.jwk];
    const r = await whoami(await token(k2, { sub: 'idp|2', email: 'bob@example.com', scope: 'approve read' }));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.identity, 'bob');
  });
});
