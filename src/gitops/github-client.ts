/**
 * The Octokit client of the GitHub provider: @octokit/rest with @octokit/plugin-retry (transient 5xx and
 * network errors) and @octokit/plugin-throttling (GitHub's rate limits), token or GitHub App installation
 * auth, configurable base URL (GitHub Enterprise Server: `https://ghe.example.com/api/v3`).
 *
 * Rate limits, as GitHub asks integrations to behave:
 * - primary (403/429 with `x-ratelimit-remaining: 0`): the throttling plugin waits until `x-ratelimit-reset`
 *   (+1 s) before retrying;
 * - secondary (message "secondary rate limit"): `retry-after` seconds, else the plugin's fallback (60 s), and
 *   exponentially longer on repeated hits.
 * While a limit is in force, a gate holds every new request of the same credentials until it ends, so no
 * other activity sends a request early either. Waits longer than `maxInlineWaitSeconds` are not slept in the
 * activity: the attempt ends with a retryable `GitHubRateLimited` failure whose nextRetryDelay is the wait.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createAppAuth } from '@octokit/auth-app';
import { retry } from '@octokit/plugin-retry';
import { throttling, type ThrottlingOptions } from '@octokit/plugin-throttling';
import { Octokit } from '@octokit/rest';
import { ApplicationFailure } from '@temporalio/common';
import { GitopsFailureTypes } from './errors.js';

const GitHubOctokit = Octokit.plugin(retry, throttling);
export type GitHubClient = InstanceType<typeof GitHubOctokit>;

export type GitHubAuth =
  | { kind: 'token'; token: string }
  | { kind: 'app'; appId: string; privateKey: string; installationId: number };

/** Plugin options modelgate does not set itself (its handlers are always used). */
export type ThrottleOverrides = Omit<Partial<Extract<ThrottlingOptions, { onRateLimit: unknown }>>, 'onRateLimit' | 'onSecondaryRateLimit' | 'enabled'>;

export interface GitHubClientOptions {
  baseUrl: string;
  auth: GitHubAuth;
  /** Passed to @octokit/plugin-throttling unchanged; production leaves it empty, tests shorten fallbacks. */
  throttle?: ThrottleOverrides;
  /** Retries inside one activity attempt after a rate limit (default 3). */
  rateLimitRetries?: number;
  /** Longer waits end the attempt with a retryable failure carrying nextRetryDelay (default 60 s). */
  maxInlineWaitSeconds?: number;
  log?: { warn(message: string): void };
  userAgent?: string;
}

/** Status codes modelgate decides about itself; plugin-retry must not retry them (429 would ignore the reset). */
const DO_NOT_RETRY = [400, 401, 403, 404, 405, 409, 410, 422, 429, 451];

/** Earliest time (ms) the next request of given credentials may be sent. Shared by every client in the process. */
const gates = new Map<string, number>();

export function createGitHubClient(opts: GitHubClientOptions): GitHubClient {
  const baseUrl = opts.baseUrl.replace(/\/+$/, '');
  const gateKey = `${baseUrl}|${credentialId(opts.auth)}`;
  const retries = opts.rateLimitRetries ?? 3;
  const maxInline = opts.maxInlineWaitSeconds ?? 60;
  const unit = opts.throttle?.retryAfterBaseValue ?? 1000;
  const warn = (m: string) => opts.log?.warn(m);
  const block = (seconds: number) => {
    const until = Date.now() + seconds * unit;
    if (until > (gates.get(gateKey) ?? 0)) gates.set(gateKey, until);
  };

  const auth =
    opts.auth.kind === 'token'
      ? { auth: opts.auth.token }
      : {
          authStrategy: createAppAuth,
          auth: { appId: opts.auth.appId, privateKey: opts.auth.privateKey, installationId: opts.auth.installationId },
        };

  const client = new GitHubOctokit({
    ...auth,
    baseUrl,
    userAgent: opts.userAgent ?? 'modelgate',
    // The request-log plugin would print every request at info level; keep warnings only.
    log: { debug: () => {}, info: () => {}, warn: (m: string) => warn(m), error: (m: string) => warn(m) },
    retry: { doNotRetry: DO_NOT_RETRY },
    throttle: {
      id: `modelgate ${gateKey.replace(/\|.*$/, '')} ${credentialId(opts.auth)}`,
      ...opts.throttle,
      onRateLimit: (retryAfter: number, options: { method: string; url: string }, _o: unknown, retryCount: number) => {
        block(retryAfter);
        const again = retryCount < retries && retryAfter <= maxInline;
        warn(`GitHub rate limit on ${options.method} ${options.url}: ${again ? `retrying in ${retryAfter}s` : 'giving up this attempt'}`);
        return again;
      },
      // The plugin awaits a handler's promise (Bottleneck's Events.trigger), so the back-off can sleep here.
      // eslint-disable-next-line @typescript-eslint/no-misused-promises
      onSecondaryRateLimit: async (retryAfter: number, options: { method: string; url: string }, _o: unknown, retryCount: number) => {
        // Repeated hits back off exponentially: retryAfter, 2×, 4× … (the plugin waits retryAfter itself).
        const extra = retryAfter * (2 ** retryCount - 1);
        block(retryAfter + extra);
        const again = retryCount < retries && retryAfter + extra <= maxInline;
        warn(`GitHub secondary rate limit on ${options.method} ${options.url}: ${again ? `retrying in ${retryAfter + extra}s` : 'giving up this attempt'}`);
        if (again && extra > 0) await sleep(extra * unit);
        return again;
      },
    },
  });

  // Outermost hook: every new request waits for the gate (retries inside the plugin are already delayed).
  client.hook.before('request', async () => {
    const wait = (gates.get(gateKey) ?? 0) - Date.now();
    if (wait <= 0) return;
    if (wait > maxInline * 1000) throw rateLimitedFailure(wait);
    await sleep(wait);
  });
  return client;
}

export function rateLimitedFailure(waitMs: number): ApplicationFailure {
  return ApplicationFailure.create({
    type: GitopsFailureTypes.GitHubRateLimited,
    message: `GitHub rate limit in force for another ${Math.ceil(waitMs / 1000)}s`,
    nonRetryable: false,
    nextRetryDelay: Math.max(1000, Math.ceil(waitMs) + 1000),
  });
}

/** Identifies the credentials without revealing them (rate limits are per token / installation). */
function credentialId(auth: GitHubAuth): string {
  return auth.kind === 'token'
    ? `token:${createHash('sha256').update(auth.token).digest('hex').slice(0, 12)}`
    : `app:${auth.appId}:${auth.installationId}`;
}
