/**
 * The worker's client of the API replicas' invalidation route (POST /internal/models/:model/invalidate): one
 * Production change is told to every replica, so none serves the old version until its TTL. Targets are the
 * configured URLs (MODELGATE_INVALIDATE_URL, comma-separated); with DNS fan-out (MODELGATE_INVALIDATE_DNS) each
 * URL's host is resolved on every call to all its A/AAAA records (a headless Service lists one per ready pod),
 * so replicas that came or went since the last change are reached without a restart. Calls run in parallel,
 * each bounded by its own timeout, so a dead or slow replica never delays the others.
 * Built once per worker process (worker-main.ts); the token travels only in the authorization header.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { Agent, request, type Dispatcher } from 'undici';

/** All addresses of a host name (IPv4 and IPv6); an IP literal resolves to itself. */
export type Resolver = (host: string) => Promise<string[]>;

export const systemResolver: Resolver = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/**
 * Why one replica did not acknowledge. `refused`: nothing listens there (a replica that is not running holds no
 * cache; it reads MLflow when it starts). `rejected`: a 4xx (wrong token, route disabled) that repeating cannot
 * fix. `timeout`, `error` (5xx or a broken connection) and `unresolved` (DNS failed): a replica may be up and
 * still serving the old value, so the call is worth repeating.
 */
export type FailureKind = 'refused' | 'rejected' | 'timeout' | 'error' | 'unresolved';

export interface TargetFailure {
  /** host:port called (an address when resolved by DNS); never a credential. */
  target: string;
  kind: FailureKind;
  detail: string;
}

export interface FanoutResult {
  /** Replicas called (after DNS resolution). */
  targets: number;
  acknowledged: number;
  failures: TargetFailure[];
}

export interface InvalidationClientOptions {
  /** Base URLs of the API (no credentials, http(s)). */
  urls: string[];
  token?: string;
  /** Resolve each URL's host to all its addresses on every call. */
  dns?: boolean;
  resolver?: Resolver;
  /** Per HTTP attempt; default 3 s. */
  timeoutMs?: number;
  /** HTTP attempts per replica inside one call; default 2 (only for failures worth repeating, and refused). */
  attempts?: number;
  dispatcher?: Dispatcher;
}

export interface InvalidationClient {
  invalidate(model: string): Promise<FanoutResult>;
  close(): Promise<void>;
}

export const RETRYABLE: ReadonlySet<FailureKind> = new Set(['timeout', 'error', 'unresolved']);

interface Target {
  url: string;
  label: string;
  /** The configured host:port, sent as Host when calling an address. */
  host?: string;
}

async function expand(urls: string[], dns: boolean, resolver: Resolver): Promise<{ targets: Target[]; failures: TargetFailure[] }> {
  const targets: Target[] = [];
  const failures: TargetFailure[] = [];
  await Promise.all(
    urls.map(async (raw) => {
      const u = new URL(raw);
      const hostname = u.hostname.replace(/^\[|\]$/g, '');
      if (!dns || isIP(hostname)) {
        targets.push({ url: raw.replace(/\/+$/, ''), label: u.host });
        return;
      }
      try {
        const addresses = [...new Set(await resolver(hostname))];
        if (!addresses.length) throw Object.assign(new Error('no addresses'), { code: 'ENODATA' });
        for (const a of addresses) {
          const host = isIP(a) === 6 ? `[${a}]` : a;
          const port = u.port ? `:${u.port}` : '';
          targets.push({ url: `${u.protocol}//${host}${port}${u.pathname.replace(/\/+$/, '')}`, label: `${host}${port}`, host: u.host });
        }
      } catch (err) {
        failures.push({ target: u.host, kind: 'unresolved', detail: String((err as { code?: string }).code ?? (err as Error).name) });
      }
    }),
  );
  return { targets, failures };
}

export function createInvalidationClient(opts: InvalidationClientOptions): InvalidationClient {
  const timeoutMs = opts.timeoutMs ?? 3_000;
  const attempts = Math.max(1, opts.attempts ?? 2);
  const resolver = opts.resolver ?? systemResolver;
  // Kept-alive connections to each replica: the next change does not pay for a new connection.
  const owned = opts.dispatcher ? undefined : new Agent({ keepAliveTimeout: 30_000, connections: 4 });
  const dispatcher = opts.dispatcher ?? owned!;

  async function callOnce(t: Target, model: string): Promise<TargetFailure | undefined> {
    const headers: Record<string, string> = {};
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (t.host) headers.host = t.host;
    try {
      const res = await request(`${t.url}/internal/models/${encodeURIComponent(model)}/invalidate`, {
        method: 'POST',
        headers,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: AbortSignal.timeout(timeoutMs),
        dispatcher,
      });
      await res.body.dump();
      if (res.statusCode >= 200 && res.statusCode < 300) return undefined;
      return { target: t.label, kind: res.statusCode >= 500 ? 'error' : 'rejected', detail: `HTTP ${res.statusCode}` };
    } catch (err) {
      // A timeout is a DOMException (name TimeoutError, numeric code); transport errors carry a string code.
      const raw = (err as { code?: unknown }).code;
      const code = typeof raw === 'string' ? raw : (err as Error).name;
      const kind: FailureKind = code === 'ECONNREFUSED' ? 'refused' : /timeout|abort/i.test(code) ? 'timeout' : 'error';
      // The code only: transport messages may echo request details, and the code says enough.
      return { target: t.label, kind, detail: code };
    }
  }

  async function callTarget(t: Target, model: string): Promise<TargetFailure | undefined> {
    let last: TargetFailure | undefined;
    for (let i = 0; i < attempts; i++) {
      last = await callOnce(t, model);
      if (!last || last.kind === 'rejected') return last;
    }
    return last;
  }

  return {
    async invalidate(model) {
      const { targets, failures } = await expand(opts.urls, !!opts.dns, resolver);
      const outcomes = await Promise.all(targets.map((t) => callTarget(t, model)));
      const failed = outcomes.filter((o): o is TargetFailure => !!o);
      return { targets: targets.length, acknowledged: targets.length - failed.length, failures: [...failures, ...failed] };
    },
    async close() {
      await owned?.close();
    },
  };
}
