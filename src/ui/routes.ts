/**
 * The approvals web page, served by the API on its own port under /ui. Pages are rendered on the server with
 * the escaping `html` tag; one local stylesheet and script; a strict CSP (no inline script, nothing from other
 * origins, no framing). Viewing needs the session's `read` scope, deciding its `approve` scope, and every POST
 * a CSRF token. A decision goes through the API's own Decisions with the front door's signer and channel `ui`,
 * so the lifecycle receives an attestation identical to an API one.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Authenticator } from '../api/auth.js';
import type { Decisions } from '../api/decisions.js';
import { HttpError, toHttpError } from '../api/errors.js';
import type { IdentityDirectory } from '../identity/directory.js';
import type { IdentityRef, Scope } from '../identity/types.js';
import type { NotifyLinks } from '../slack/blocks.js';
import { UI_CSS, UI_JS } from './assets.js';
import { readModel, readPending, readVersion, type UiData } from './data.js';
import { decisionRights } from './eligibility.js';
import { html } from './html.js';
import { page } from './layout.js';
import { LOGIN_COOKIE, loginNonceOk, safeNext, showLogin, type LoginOption } from './login.js';
import { modelBody } from './model-page.js';
import { pendingBody, pendingRows } from './pending-page.js';
import { sameOrigin, type Session, type UiSessions } from './session.js';
import { statusFragment, versionBody, type VersionPageInput } from './version-page.js';

export interface UiDeps extends UiData {
  sessions: UiSessions;
  auth: Authenticator;
  directory: IdentityDirectory;
  decisions: Decisions;
  links: NotifyLinks;
  /** Models with a policy (for the filter list). */
  managedModels?: () => string[] | Promise<string[]>;
  /** Other sign-in buttons shown on /ui/login (ui-oidc adds the identity provider's). */
  loginOptions?: (req: FastifyRequest) => LoginOption[];
  now?: () => number;
}

export const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** Longest comment or reason accepted (the workflow's limit too). */
const TEXT_MAX = 2000;
const UI_BODY_LIMIT = 16 * 1024;

interface KeyParams {
  model: string;
  version: string;
}

function parseVersion(v: string): number {
  if (!/^[1-9][0-9]{0,9}$/.test(v)) throw new HttpError(400, 'invalid_params', `version must be a positive integer (got ${JSON.stringify(v.slice(0, 20))})`);
  return Number(v);
}

function wantsHtml(req: FastifyRequest): boolean {
  return !req.url.startsWith('/ui/fragments/') && !req.url.endsWith('/status') && String(req.headers.accept ?? '').includes('text/html');
}

function text(body: unknown, field: string): string | undefined {
  const v = body && typeof body === 'object' ? (body as Record<string, unknown>)[field] : undefined;
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string' || v.length > TEXT_MAX) throw new HttpError(400, 'invalid_body', `${field} must be text of at most ${TEXT_MAX} characters`);
  return v;
}

export function uiRoutes(deps: UiDeps): FastifyPluginAsync {
  const { sessions } = deps;
  const now = () => (deps.now ? deps.now() : Date.now());
  const loginOptions = (req: FastifyRequest) => deps.loginOptions?.(req) ?? [];

  /** The session of a request whose identity is still in the directory, with its current groups. */
  const current = (req: FastifyRequest): { session: Session; who: IdentityRef & { scopes: Scope[] } } | undefined => {
    const session = sessions.readSession(req);
    const ref = session ? deps.directory.ref(session.identity) : undefined;
    return session && ref ? { session, who: { ...ref, scopes: session.scopes } } : undefined;
  };

  /** Pages: no session → the login page (then back here). Fragments and posts: 401. */
  const guard = (req: FastifyRequest, reply: FastifyReply, scope: Scope) => {
    const c = current(req);
    if (!c) {
      if (req.method === 'GET' && wantsHtml(req)) {
        void reply.redirect(`/ui/login?next=${encodeURIComponent(safeNext(req.url))}`, 303);
        return undefined;
      }
      throw new HttpError(401, 'unauthorized', 'sign in first (/ui/login)');
    }
    if (!c.session.scopes.includes(scope)) {
      throw new HttpError(403, 'insufficient_scope', `${c.session.identity}'s sign-in does not carry the "${scope}" scope (it has: ${c.session.scopes.join(', ') || 'none'})`);
    }
    return c;
  };

  const sendPage = (reply: FastifyReply, title: string, c: { session: Session }, body: ReturnType<typeof html>, status = 200) =>
    reply.status(status).type('text/html; charset=utf-8').send(page({ title, session: c.session, csrf: sessions.csrfToken(c.session), body }));

  const managed = async () => {
    try {
      return (await deps.managedModels?.()) ?? [];
    } catch {
      return [];
    }
  };

  return async (app: FastifyInstance) => {
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: UI_BODY_LIMIT }, (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(String(body))));
    });

    app.addHook('onSend', (_req, reply, payload, done) => {
      void reply.header('content-security-policy', CSP);
      void reply.header('x-frame-options', 'DENY');
      void reply.header('x-content-type-options', 'nosniff');
      void reply.header('referrer-policy', 'same-origin');
      if (!reply.hasHeader('cache-control')) void reply.header('cache-control', 'no-store');
      done(null, payload);
    });

    app.setErrorHandler((err, req, reply) => {
      const h = toHttpError(err);
      if (h.status >= 500) req.log.error({ err, route: req.routeOptions.url }, 'ui request failed');
      if (!wantsHtml(req)) return reply.status(h.status).type('application/json').send({ code: h.code, message: h.message });
      const c = current(req);
      const body = html`<h1>${h.status === 403 ? 'Not allowed' : h.status === 401 ? 'Not signed in' : 'Something went wrong'}</h1>
<p class="error" role="alert" data-testid="error" data-code="${h.code}">${h.message} <span class="muted">(${h.code})</span></p>
<p><a href="/ui/">Back to pending approvals</a></p>`;
      return reply.status(h.status).type('text/html; charset=utf-8').send(page({ title: 'Error', ...(c ? { session: c.session, csrf: sessions.csrfToken(c.session) } : {}), body }));
    });

    app.get('/ui/static/ui.css', (_req, reply) => reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=300').send(UI_CSS));
    app.get('/ui/static/ui.js', (_req, reply) => reply.type('text/javascript; charset=utf-8').header('cache-control', 'public, max-age=300').send(UI_JS));
    app.get('/ui', (_req, reply) => reply.redirect('/ui/', 303));

    app.get<{ Querystring: { next?: string } }>('/ui/login', (req, reply) => showLogin(sessions, req, reply, { next: safeNext(req.query.next), options: loginOptions(req) }));

    app.post<{ Body: Record<string, unknown> | undefined }>('/ui/login', { bodyLimit: UI_BODY_LIMIT }, async (req, reply) => {
      const next = safeNext(req.body?.next);
      const options = loginOptions(req);
      if (!sameOrigin(req) || !loginNonceOk(sessions, req, req.body?._csrf)) {
        return showLogin(sessions, req, reply, { next, options, status: 403, error: 'The sign-in form expired or came from another site; try again (csrf_rejected).' });
      }
      const token = typeof req.body?.token === 'string' ? req.body.token.trim() : '';
      let caller;
      try {
        if (!token || /\s/.test(token)) throw new HttpError(401, 'unauthorized', 'no token');
        caller = await deps.auth.identify(`Bearer ${token}`);
      } catch (err) {
        const h = toHttpError(err);
        if (h.status >= 500) throw err;
        req.log.info({ code: h.code }, 'ui sign-in refused');
        return showLogin(sessions, req, reply, { next, options, status: 401, error: 'That token is not valid for this modelgate.' });
      }
      sessions.establishSession(req, reply, { identity: caller.identity, via: 'token', scopes: caller.scopes, expiresAt: now() + 24 * 3600_000 });
      sessions.setCookie(req, reply, LOGIN_COOKIE, '', 0);
      req.log.info({ identity: caller.identity }, 'ui sign-in');
      return reply.redirect(next, 303);
    });

    app.post<{ Body: Record<string, unknown> | undefined }>('/ui/logout', { bodyLimit: UI_BODY_LIMIT }, (req, reply) => {
      const s = sessions.readSession(req);
      if (s) sessions.checkCsrf(req, s);
      sessions.clearSession(req, reply);
      return reply.redirect('/ui/login', 303);
    });

    app.get<{ Querystring: { model?: string } }>('/ui/', async (req, reply) => {
      const c = guard(req, reply, 'read');
      if (!c) return reply;
      const model = req.query.model || undefined;
      const [{ items, notes }, models] = await Promise.all([readPending(deps, model), managed()]);
      const all = [...models, ...items.map((i) => i.state.model)];
      return sendPage(reply, 'Pending approvals', c, pendingBody({ items, notes, model, models: all, now: now() }));
    });

    app.get<{ Querystring: { model?: string } }>('/ui/fragments/pending', async (req, reply) => {
      guard(req, reply, 'read');
      const { items, notes } = await readPending(deps, req.query.model || undefined);
      return reply.type('text/html; charset=utf-8').send(pendingRows(items, notes, now()).value);
    });

    app.get<{ Params: { model: string } }>('/ui/models/:model', async (req, reply) => {
      const c = guard(req, reply, 'read');
      if (!c) return reply;
      return sendPage(reply, req.params.model, c, modelBody(await readModel(deps, req.params.model), now()));
    });

    const renderVersion = async (req: FastifyRequest<{ Params: KeyParams }>, reply: FastifyReply, c: NonNullable<ReturnType<typeof current>>, flash?: VersionPageInput['flash'], status = 200) => {
      const version = parseVersion(req.params.version);
      const view = await readVersion(deps, req.params.model, version, { identity: c.who.identity, groups: c.who.groups });
      const rights = decisionRights(view.state, c.who);
      return sendPage(reply, `${req.params.model} v${version}`, c, versionBody({ view, rights, csrf: sessions.csrfToken(c.session), links: deps.links, now: now(), ...(flash ? { flash } : {}) }), status);
    };

    app.get<{ Params: KeyParams; Querystring: { done?: string } }>('/ui/models/:model/versions/:version', async (req, reply) => {
      const c = guard(req, reply, 'read');
      if (!c) return reply;
      const done = req.query.done;
      const flash = done === 'approve' || done === 'reject' ? { kind: 'success' as const, text: done === 'approve' ? 'Your approval was recorded.' : 'Your rejection was recorded.' } : undefined;
      return renderVersion(req, reply, c, flash);
    });

    app.get<{ Params: KeyParams }>('/ui/models/:model/versions/:version/status', async (req, reply) => {
      guard(req, reply, 'read');
      const view = await readVersion({ client: deps.client }, req.params.model, parseVersion(req.params.version), { identity: '', groups: [] });
      return reply.type('text/html; charset=utf-8').send(statusFragment(view.state, now()).value);
    });

    for (const kind of ['approve', 'reject'] as const) {
      app.post<{ Params: KeyParams; Body: Record<string, unknown> | undefined }>(`/ui/models/:model/versions/:version/${kind}`, { bodyLimit: UI_BODY_LIMIT }, async (req, reply) => {
        const c = current(req);
        if (!c) throw new HttpError(401, 'unauthorized', 'sign in first (/ui/login)');
        // Before anything else, and before any Temporal call: a forged or cross-site post stops here.
        sessions.checkCsrf(req, c.session);
        if (!c.session.scopes.includes('approve')) throw new HttpError(403, 'insufficient_scope', `${c.session.identity}'s sign-in does not carry the "approve" scope`);
        const version = parseVersion(req.params.version);
        const comment = text(req.body, 'comment');
        const reason = text(req.body, 'reason');
        if (kind === 'reject' && !reason?.trim()) throw new HttpError(400, 'reason_required', 'a reason is required to reject');
        try {
          await deps.decisions.decide(kind, req.params.model, version, { by: c.who.identity, groups: c.who.groups, via: 'ui', comment, reason });
        } catch (err) {
          const h = toHttpError(err);
          if (h.status >= 500) throw err;
          return renderVersion(req, reply, c, { kind: 'error', text: h.message, code: h.code }, h.status);
        }
        req.log.info({ model: req.params.model, version, by: c.who.identity, kind }, 'ui decision');
        return reply.redirect(`/ui/models/${encodeURIComponent(req.params.model)}/versions/${version}?done=${kind}`, 303);
      });
    }
    return Promise.resolve();
  };
}
