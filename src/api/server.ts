/**
 * The HTTP front door: one fastify instance with the v1 API, the three signed webhooks/interactions, health and
 * metrics. buildServer wires routes to their dependencies and returns the instance without listening, so tests
 * use `inject` or listen on port 0 and main.ts listens on the configured port.
 */
import Fastify, { LogController, type FastifyInstance, type FastifyPluginAsync, type FastifyRequest } from 'fastify';
import type { Client } from '@temporalio/client';
import type { WebClient } from '@slack/web-api';
import type { ApiConfig } from '../config/api.js';
import type { RollbackRegistry } from '../client.js';
import type { DryRun } from '../dryrun/types.js';
import type { Logger } from '../observability/log.js';
import type { NotifyLinks } from '../slack/blocks.js';
import { createSlackClient } from '../slack/client.js';
import { DeliveryDedupe } from '../webhooks/dedupe.js';
import { Authenticator, type JwtVerifier } from './auth.js';
import { OidcVerifier } from '../identity/oidc.js';
import { UiSessions } from '../ui/session.js';
import { loadUiConfig } from '../config/ui.js';
import { oidcLoginOption, uiOidcRoutes, type UiOidcDeps } from '../ui/oidc-login.js';
import { OidcDiscovery } from '../ui/oidc-discovery.js';
import { BackgroundTasks } from './background.js';
import { Decisions } from './decisions.js';
import { errorHandler, HttpError } from './errors.js';
import { fastPathServer, type FastPath, type FastPathSwitch } from './fast-path.js';
import { httpDuration, httpRequests } from './metrics.js';
import { healthRoutes } from './routes/health.js';
import { slackRoute } from './routes/slack.js';
import { v1Routes } from './routes/v1.js';
import { githubWebhookRoute, type GithubWebhookDeps } from './routes/webhook-github.js';
import { mlflowWebhookRoute } from './routes/webhook-mlflow.js';
import { uiRoutes, type UiDeps } from '../ui/routes.js';

export interface ApiDeps {
  client: Client;
  config: ApiConfig;
  logger: Logger;
  /** Checked by /readyz (GET {trackingUri}/health). */
  mlflow?: { trackingUri: string };
  /** MLflow reads of the rollback route (who serves, what it replaced); without it rollbacks answer 503. */
  registry?: RollbackRegistry;
  /** What-if reports (POST /v1/models/:m/versions/:v/dry-run); undefined: that route answers 503. */
  dryRun?: DryRun;
  /**
   * The (repository `owner/name`, base branch) pairs of the policy's github gitops sections (see
   * githubWebhookTargets): GitHub webhooks for anything else are ignored. Undefined = none, every GitHub
   * delivery is ignored.
   */
  githubTargets?: GithubWebhookDeps['targets'];
  /** Models with a policy: MLflow webhooks for other models are ignored. Undefined = all models. */
  managedModels?: () => string[] | Promise<string[]>;
  /** Bot client for Slack modals and chat.update; built from config.slack.botToken when omitted. */
  slack?: WebClient;
  /** Links drawn into Slack messages. */
  links?: NotifyLinks;
  /** Task queue lifecycles are started on (MODELGATE_TASK_QUEUE); default from definitions.ts. */
  taskQueue?: string;
  /** Answered before fastify when they can be (e.g. activeFastPath for active-version cache hits). */
  fastPaths?: FastPath[];
  /** Verifies OIDC bearer tokens (built from config.identity.oidc by main.ts); none: static tokens only. */
  oidc?: JwtVerifier;
  /** Test seam of the page's OIDC sign-in: replaces the discovered endpoints (e.g. a token endpoint double). */
  uiOidcEndpoints?: UiOidcDeps['endpoints'];
  /** Extra route plugins (e.g. routes/active.ts); they inherit the JSON error format. */
  plugins?: FastifyPluginAsync[];
  /** The approvals web page under /ui (src/ui); absent: not served. */
  ui?: Pick<UiDeps, 'sessions' | 'mlflow' | 'serving' | 'dryRun' | 'loginOptions' | 'now'>;
}

/** Default when a route sets none. */
export const DEFAULT_BODY_LIMIT = 16 * 1024;

export interface ApiServer extends FastifyInstance {
  /** Background work (Slack decisions) still running; tests and shutdown wait on it. */
  background: BackgroundTasks;
}

export function buildServer(deps: ApiDeps): ApiServer {
  const fastPathSwitch: FastPathSwitch = { closing: false };
  const app = Fastify({
    loggerInstance: deps.logger,
    // Per-request lines would double the metrics; routes log what matters (and never headers).
    logController: new LogController({ disableRequestLogging: true }),
    // No per-request child logger: routes log with their own bindings, and the active-version endpoint is a
    // hot path for inference gateways (a child per request cost ~14 µs of ~80 µs, see docs/PERFORMANCE.md).
    childLoggerFactory: (logger) => logger,
    bodyLimit: DEFAULT_BODY_LIMIT,
    return503OnClosing: true,
    requestTimeout: 30_000,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
    ...(deps.fastPaths?.length ? { serverFactory: fastPathServer(deps.fastPaths, fastPathSwitch) } : {}),
  }) as unknown as ApiServer;
  const background = new BackgroundTasks(deps.logger);
  app.decorate('background', background);
  const identity = deps.config.identity;
  const signer = identity.signer;
  const decisions = new Decisions(deps.client, signer ? (claims) => signer.sign(claims) : undefined);
  const dedupe = new DeliveryDedupe(10_000, 24 * 3600_000);

  app.setErrorHandler(errorHandler(deps.logger));
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ code: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` });
  });
  // A callback hook, not an async one: no promise per request on the hot path.
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'unmatched';
    httpRequests.inc({ route, status: String(reply.statusCode) });
    httpDuration.observe({ route }, reply.elapsedTime / 1000);
    done();
  });
  // Closing: fastify answers in-flight keep-alive requests with 503 + Connection: close; the fast paths step aside.
  app.addHook('preClose', (done) => {
    fastPathSwitch.closing = true;
    done();
  });
  app.addHook('onClose', async () => {
    await background.drain(10_000);
  });

  const slack =
    deps.slack ?? (deps.config.slack.botToken ? createSlackClient({ token: deps.config.slack.botToken, apiUrl: deps.config.slack.apiUrl }) : undefined);
  const links = deps.links ?? {};

  void app.register(healthRoutes({ client: deps.client, mlflow: deps.mlflow }));
  const oidc = identity.oidc;
  const auth = new Authenticator(
    identity.directory,
    deps.oidc ??
      (oidc
        ? new OidcVerifier({ issuer: oidc.issuer, audience: oidc.audience, jwksUrl: oidc.jwksUrl, jwksCooldownMs: oidc.jwksCooldownMs })
        : undefined),
  );
  void app.register(v1Routes({ client: deps.client, auth, directory: identity.directory, decisions, signer, taskQueue: deps.taskQueue, registry: deps.registry, dryRun: deps.dryRun }));
  void app.register(
    mlflowWebhookRoute({ client: deps.client, secret: deps.config.mlflowWebhookSecret, dedupe, managedModels: deps.managedModels, taskQueue: deps.taskQueue }),
  );
  void app.register(
    githubWebhookRoute({ client: deps.client, secret: deps.config.githubWebhookSecret, dedupe, targets: deps.githubTargets ?? (() => []) }),
  );
  void app.register(
    slackRoute({
      signingSecret: deps.config.slack.signingSecret,
      identities: identity.directory,
      responseUrlPrefixes: deps.config.slack.responseUrlPrefixes,
      slack,
      links,
      decisions,
      logger: deps.logger,
      background,
    }),
  );
  const uiOidc = deps.config.uiOidc;
  if (deps.ui) {
    const own = deps.ui.loginOptions;
    // The identity provider's button on the login page, keeping the page's own `next`.
    const loginOptions = uiOidc
      ? (req: FastifyRequest) => [...(own?.(req) ?? []), oidcLoginOption(uiOidc, (req.query as { next?: string } | undefined)?.next)]
      : own;
    void app.register(
      uiRoutes({
        ...deps.ui,
        ...(loginOptions ? { loginOptions } : {}),
        dryRun: deps.ui.dryRun ?? deps.dryRun,
        client: deps.client,
        auth,
        directory: identity.directory,
        decisions,
        links,
        managedModels: deps.managedModels,
      }),
    );
  }
  if (uiOidc) {
    const ui = deps.config.ui ?? loadUiConfig({});
    const discovery = new OidcDiscovery(uiOidc.issuer, { cooldownMs: uiOidc.jwksCooldownMs });
    void app.register(
      uiOidcRoutes({
        settings: uiOidc,
        // One session key for both: a sign-in here must open the page's sessions.
        sessions: deps.ui?.sessions ?? new UiSessions({ key: ui.sessionKey, secureCookies: ui.secureCookies || uiOidc.secure, ttlMs: ui.sessionTtlMs }),
        secureCookies: ui.secureCookies,
        sessionTtlMs: ui.sessionTtlMs,
        directory: identity.directory,
        // The API's verifier, with the page's client id as the audience: an access token for the API is not an ID token for the page.
        verifier: new OidcVerifier({ issuer: uiOidc.issuer, audience: uiOidc.clientId, jwksUrl: uiOidc.jwksUrl, jwksCooldownMs: uiOidc.jwksCooldownMs }),
        endpoints: deps.uiOidcEndpoints ?? (() => discovery.endpoints()),
        logger: deps.logger,
      }),
    );
  }
  for (const plugin of deps.plugins ?? []) void app.register(plugin);
  return app;
}

export { HttpError };
