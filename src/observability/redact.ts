/**
 * Redaction of anything about to be logged: a value under a secret-looking key, at any depth, becomes
 * "[redacted]", and URL userinfo in any string is masked (`https://***@host/…`). pino's own `redact` takes
 * fixed paths, which miss a token one level deeper than foreseen; this walks the whole value instead.
 *
 * Cheap on the common case: a value with nothing to hide is returned as is (same reference, nothing copied);
 * only the objects on the way to a change are copied, and the input is never modified.
 */
import { stdSerializers } from 'pino';
import { maskUrlCredentials } from '../util/url-credentials.js';

export const REDACTED = '[redacted]';

/** Deeper than this, a value is replaced rather than walked (a runaway structure could hide anything). */
export const MAX_DEPTH = 12;
const TOO_DEEP = '[too deep]';
const CIRCULAR = '[Circular]';

// *token*, *secret*, *password*, *apikey* / api_key / api-key, *authorization* (also Proxy-Authorization),
// cookie, set-cookie; plus *privatekey* / private_key and *signature* (webhook signature headers), which the
// fixed redact paths covered before.
const SECRET_KEY = /token|secret|passw(or)?d|api[-_]?key|authorization|private[-_]?key|signature|^(set-)?cookie$/i;

/** Whether a value under `key` is never logged. Case-insensitive. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/**
 * `value` with secret-keyed values replaced and URL userinfo masked, at any depth (arrays included). Errors
 * become pino's serialized form (type, message, stack, own fields) with the same redaction applied; cycles
 * become "[Circular]"; Buffers, Dates, typed arrays, Maps, Sets and objects with their own toJSON are left as
 * they are (their JSON form holds no keys of ours); a URL object is masked like a URL string.
 */
export function redact<T>(value: T): T {
  return walk(value, 0, new Set()) as T;
}

function walk(v: unknown, depth: number, ancestors: Set<object>): unknown {
  if (typeof v === 'string') return maskUrlCredentials(v);
  if (typeof v !== 'object' || v === null) return v;
  if (v instanceof URL) return v.username || v.password ? maskUrlCredentials(v.href) : v;
  if (ancestors.has(v)) return CIRCULAR;
  if (depth >= MAX_DEPTH) return TOO_DEEP;
  if (v instanceof Error) return within(v, ancestors, () => walkEntries(serializeError(v), depth, ancestors, true));
  if (Array.isArray(v)) return within(v, ancestors, () => walkArray(v, depth, ancestors));
  if (!isWalkable(v)) return v;
  return within(v, ancestors, () => walkEntries(v as Record<string, unknown>, depth, ancestors, false));
}

/** Tracks the current path, not every object seen: the same object twice side by side is not a cycle. */
function within<R>(v: object, ancestors: Set<object>, f: () => R): R {
  ancestors.add(v);
  try {
    return f();
  } finally {
    ancestors.delete(v);
  }
}

function walkArray(arr: unknown[], depth: number, ancestors: Set<object>): unknown[] {
  let out: unknown[] | undefined;
  for (let i = 0; i < arr.length; i++) {
    const r = walk(arr[i], depth + 1, ancestors);
    if (r !== arr[i] && !out) out = arr.slice(0, i);
    if (out) out.push(r);
  }
  return out ?? arr;
}

/** Copy-on-write over own enumerable keys; `fresh` objects (serialized errors) are ours to fill in place. */
function walkEntries(obj: Record<string, unknown>, depth: number, ancestors: Set<object>, fresh: boolean): Record<string, unknown> {
  let out: Record<string, unknown> | undefined = fresh ? obj : undefined;
  for (const key of Object.keys(obj)) {
    const v = obj[key];
    const r = v !== undefined && isSecretKey(key) ? REDACTED : walk(v, depth + 1, ancestors);
    if (r === v) continue;
    out ??= { ...obj };
    out[key] = r;
  }
  return out ?? obj;
}

/**
 * Plain objects and class instances are walked (JSON.stringify shows their own fields); values whose JSON
 * form is their own business (toJSON: Date, Buffer) or holds no keys (Map, Set, typed arrays) are not.
 */
function isWalkable(v: object): boolean {
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return false;
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return false;
  if (v instanceof Map || v instanceof Set || v instanceof WeakMap || v instanceof WeakSet || v instanceof Promise) return false;
  return true;
}

/** pino's standard error shape as a fresh plain object (its `raw` link to the original error left out). */
function serializeError(err: Error): Record<string, unknown> {
  const s = stdSerializers.err(err) as unknown as Record<string, unknown>;
  return Object.fromEntries(Object.keys(s).map((k) => [k, s[k]]));
}
