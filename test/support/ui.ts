/**
 * The /ui page against the real stack for a test file: the API server in-process (listening on a free port),
 * a real worker on its own task queue, real Temporal and MLflow; tokens for the usual people (mallory is in the
 * directory but not an approver, `reader` is alice with a read-only token). A tiny cookie jar follows the
 * session across requests made with undici.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { request } from 'undici';
import { buildServer, type ApiServer } from '../../src/api/server.js';
import { loadApiConfig } from '../../src/config/api.js';
import { createLogger } from '../../src/observability/log.js';
import { parsePolicy } from '../../src/policy/load.js';
import type { PolicySource } from '../../src/activities/registry.js';
import type { MlflowClient } from '../../src/mlflow/client.js';
import { getState } from '../../src/client.js';
import { UiSessions } from '../../src/ui/session.js';
import type { UiDeps } from '../../src/ui/routes.js';
import { startLifecycle, testApiEnv } from './identity.js';
import { connectTestEnv, testStack, unique } from './stack.js';
import { registerTrainedVersion, testMlflow } from './fixtures.js';
import { eventually, startTestWorker, type RunningWorker } from './worker.js';

export const UI_POLICY = `
defaults:
  evaluation: { thresholds: ["accuracy >= 0.9"] }
  approval: { approvers: [alice, bob, carol, dana], fourEyes: true, quorum: 1, expiresAfter: 1h }
  deployment: { mode: registry }
models:
  base:
`;

export const UI_TOKENS = {
  alice: 'tok-ui-alice-0123456789abcdef',
  bob: 'tok-ui-bob-0123456789abcdef',
  dana: 'tok-ui-dana-0123456789abcdef',
  mallory: 'tok-ui-mallory-0123456789abcdef',
  reader: 'tok-ui-reader-0123456789abcdef',
};

export const UI_SESSION_KEY = 'test-ui-session-key-0123456789-abcdefghij';

export interface UiStack {
  env: TestWorkflowEnvironment;
  mlflow: MlflowClient;
  worker: RunningWorker;
  app: ApiServer;
  base: string;
  /** A fresh model with one version awaiting approval (registered and requested by dana). */
  staged(opts?: { tags?: Record<string, string>; metrics?: Record<string, number>; prefix?: string; model?: string }): Promise<{ model: string; version: number }>;
  close(): Promise<void>;
}

export async function startUiStack(
  opts: { secureCookies?: boolean; ui?: Partial<UiDeps>; /** Listen here (e.g. an OIDC redirect URI names it); default: any free port. */ port?: number; /** Extra API settings (e.g. the page's OIDC client). */ env?: Record<string, string> } = {},
): Promise<UiStack> {
  const env = await connectTestEnv();
  const mlflow = testMlflow(testStack().mlflowUri);
  const set = parsePolicy(UI_POLICY, 'ui-test-policy.yaml');
  const policies: PolicySource = { policyFor: (model: string) => ({ ...set.policyFor('base'), model }) };
  const worker = await startTestWorker(env, { mlflow, policies });
  const tokens = Object.entries(UI_TOKENS)
    .map(([who, t]) => (who === 'reader' ? `${t}=alice:read` : `${t}=${who}`))
    .join(',');
  const config = loadApiConfig(testApiEnv({ MODELGATE_API_TOKENS: tokens, ...opts.env }));
  const app = buildServer({
    client: env.client,
    config,
    logger: createLogger('silent'),
    taskQueue: worker.taskQueue,
    links: { mlflowUiUrl: testStack().mlflowUri, temporalUiUrl: 'http://127.0.0.1:8233', namespace: 'default' },
    ui: {
      sessions: new UiSessions({ key: UI_SESSION_KEY, secureCookies: opts.secureCookies ?? false, ttlMs: 3600_000 }),
      mlflow,
      ...opts.ui,
    },
  });
  await app.listen({ host: '127.0.0.1', port: opts.port ?? 0 });
  const addr = app.server.address();
  const base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return {
    env,
    mlflow,
    worker,
    app,
    base,
    async staged(o = {}) {
      const model = o.model ?? unique(o.prefix ?? 'ui');
      const v = await registerTrainedVersion(mlflow, model, { ...(o.tags ? { tags: o.tags } : {}), ...(o.metrics ? { metrics: o.metrics } : {}) });
      await startLifecycle(env.client, model, v.version, { source: 'test', by: 'dana' }, worker.taskQueue);
      await eventually(`${model} awaiting approval`, async () => ((await getState(env.client, model, v.version)).phase === 'awaiting_approval' ? true : undefined));
      return { model, version: v.version };
    },
    async close() {
      await app.close();
      await worker.stop();
      await mlflow.close();
      await env.teardown();
    },
  };
}

export interface Response {
  status: number;
  text: string;
  headers: Record<string, string | string[] | undefined>;
  location?: string;
}

/** A browser-like client: keeps cookies set by the server, sends them back, never follows redirects. */
export class Browser {
  readonly cookies = new Map<string, string>();
  constructor(private readonly base: string) {}

  cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async go(method: 'GET' | 'POST', path: string, form?: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
    const h: Record<string, string> = { accept: 'text/html', ...headers };
    if (this.cookies.size) h.cookie = this.cookieHeader();
    let body: string | undefined;
    if (form) {
      body = new URLSearchParams(form).toString();
      h['content-type'] ??= 'application/x-www-form-urlencoded';
    }
    const res = await request(`${this.base}${path}`, { method, headers: h, body });
    const text = await res.body.text();
    const set = res.headers['set-cookie'];
    for (const c of Array.isArray(set) ? set : set ? [set] : []) {
      const [pair] = c.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      if (/Max-Age=0/i.test(c)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const location = res.headers.location;
    return { status: res.statusCode, text, headers: res.headers, ...(typeof location === 'string' ? { location } : {}) };
  }

  /** Sign in through the login form with an API token; returns the final response of POST /ui/login. */
  async signIn(token: string, next = '/ui/'): Promise<Response> {
    const form = await this.go('GET', `/ui/login?next=${encodeURIComponent(next)}`);
    return this.go('POST', '/ui/login', { _csrf: hidden(form.text, '_csrf'), next, token });
  }
}

/** The value of the first hidden input named `name` in a page. */
export function hidden(page: string, name: string): string {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(page);
  if (!m) throw new Error(`no hidden ${name} in the page`);
  return m[1];
}
