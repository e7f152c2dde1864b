/**
 * Signature checks of the three senders that call modelgate (Slack, GitHub, MLflow). Each works on the raw
 * request bytes, compares in constant time, and says why it refused, so the route answers 401 before anything
 * is parsed or any Temporal call is made.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export type Verdict = { ok: true } | { ok: false; code: 'bad_signature' | 'stale_request'; message: string };

/** Senders sign a timestamp; anything older (or further in the future) than this is a replay. */
export const MAX_SKEW_SECONDS = 300;

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Constant-time equality of two strings of possibly different length (length itself is not secret here). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  if (ab.length !== bb.length) {
    // Compare anyway so a wrong length costs the same time as a wrong byte.
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}

function fresh(timestamp: string, nowMs: number, what: string): Verdict {
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, code: 'bad_signature', message: `${what} is not a unix timestamp` };
  const age = Math.abs(nowMs / 1000 - Number(timestamp));
  if (age > MAX_SKEW_SECONDS) {
    return { ok: false, code: 'stale_request', message: `${what} is ${Math.round(age)} s away from now (limit ${MAX_SKEW_SECONDS} s)` };
  }
  return { ok: true };
}

export function slackSignature(secret: string, timestamp: string, rawBody: Buffer | string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:`).update(rawBody).digest('hex')}`;
}

/** Slack: `X-Slack-Signature: v0=hex(HMAC-SHA256(secret, "v0:{X-Slack-Request-Timestamp}:{body}"))`. */
export function verifySlack(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  rawBody: Buffer,
  nowMs: number = Date.now(),
): Verdict {
  const ts = header(headers, 'x-slack-request-timestamp');
  const sig = header(headers, 'x-slack-signature');
  if (!ts || !sig) return { ok: false, code: 'bad_signature', message: 'missing X-Slack-Request-Timestamp or X-Slack-Signature header' };
  const age = fresh(ts, nowMs, 'X-Slack-Request-Timestamp');
  if (!age.ok) return age;
  if (!safeEqual(slackSignature(secret, ts, rawBody), sig)) return { ok: false, code: 'bad_signature', message: 'Slack signature does not match' };
  return { ok: true };
}

export function githubSignature(secret: string, rawBody: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(rawBody).digest('hex')}`;
}

/** GitHub: `X-Hub-Signature-256: sha256=hex(HMAC-SHA256(secret, body))`. GitHub signs no timestamp. */
export function verifyGithub(secret: string, headers: Record<string, string | string[] | undefined>, rawBody: Buffer): Verdict {
  const sig = header(headers, 'x-hub-signature-256');
  if (!sig) return { ok: false, code: 'bad_signature', message: 'missing X-Hub-Signature-256 header' };
  if (!safeEqual(githubSignature(secret, rawBody), sig)) return { ok: false, code: 'bad_signature', message: 'GitHub signature does not match' };
  return { ok: true };
}

export function mlflowSignature(secret: string, deliveryId: string, timestamp: string, rawBody: Buffer | string): string {
  return `v1,${createHmac('sha256', secret).update(`${deliveryId}.${timestamp}.`).update(rawBody).digest('base64')}`;
}

/** MLflow (3.3+): `X-MLflow-Signature: v1,base64(HMAC-SHA256(secret, "{delivery_id}.{timestamp}.{body}"))`. */
export function verifyMlflow(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  rawBody: Buffer,
  nowMs: number = Date.now(),
): Verdict {
  const id = header(headers, 'x-mlflow-delivery-id');
  const ts = header(headers, 'x-mlflow-timestamp');
  const sig = header(headers, 'x-mlflow-signature');
  if (!id || !ts || !sig) {
    return { ok: false, code: 'bad_signature', message: 'missing X-MLflow-Delivery-Id, X-MLflow-Timestamp or X-MLflow-Signature header' };
  }
  const age = fresh(ts, nowMs, 'X-MLflow-Timestamp');
  if (!age.ok) return age;
  if (!safeEqual(mlflowSignature(secret, id, ts, rawBody), sig)) return { ok: false, code: 'bad_signature', message: 'MLflow signature does not match' };
  return { ok: true };
}
