/**
 * The one place a Slack WebClient is built. Retries are left to the caller (Temporal's retry policy for the
 * notify activities, the background task for interactions) instead of the SDK's 30-minute default, and
 * `slackApiUrl` is configurable so tests talk to a local double.
 */
import { LogLevel, WebClient } from '@slack/web-api';

export function createSlackClient(opts: { token: string; apiUrl?: string; timeoutMs?: number }): WebClient {
  return new WebClient(opts.token, {
    slackApiUrl: opts.apiUrl,
    timeout: opts.timeoutMs ?? 10_000,
    retryConfig: { retries: 1, minTimeout: 200, maxTimeout: 1000 },
    rejectRateLimitedCalls: true,
    logLevel: LogLevel.ERROR,
    // Absolute URLs as method names would let a caller send the bot token elsewhere.
    allowAbsoluteUrls: false,
  });
}
