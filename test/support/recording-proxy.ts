/**
 * A loopback HTTP proxy in front of the real MLflow server that records every request (method, path, JSON
 * body) and lets a test act at the worst moment: after MLflow has applied a write, before its answer
 * reaches the caller, or answer in MLflow's place. Fault tests count side effects with it: a write counts as
 * applied when MLflow answered it with a 2xx (`status`), so an attempt made while MLflow was down is recorded
 * but is no side effect.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { request } from 'undici';

export interface Recorded {
  method: string;
  path: string;
  body: Record<string, unknown> | undefined;
  /** MLflow's HTTP status; undefined while waiting for it, or when MLflow never answered (down, killed). */
  status?: number;
}

export interface RecordingProxyOptions {
  /**
   * What the caller sees when MLflow cannot be reached: a 502 as a load balancer in front of it would answer
   * (default), or its connection reset, as when it talks to MLflow directly and the server dies.
   */
  whenUpstreamDown?: 'bad-gateway' | 'reset';
}

export interface RecordingProxy {
  url: string;
  requests: Recorded[];
  /** Called after MLflow answered, before the answer is sent back. */
  afterUpstream?: (r: Recorded) => Promise<void> | void;
  /** Replaces MLflow's JSON answer before it is sent back (shows the caller a state MLflow is not in); undefined: as is. */
  rewriteAnswer?: (r: Recorded, answer: Record<string, unknown>) => Record<string, unknown> | undefined;
  /** Answers instead of MLflow when it returns an answer (e.g. a registry that refuses stage transitions). */
  respond?: (r: Recorded) => { status: number; body: unknown } | undefined;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function startRecordingProxy(upstream: string, opts: RecordingProxyOptions = {}): Promise<RecordingProxy> {
  const proxy: RecordingProxy = {
    url: '',
    requests: [],
    close: () => Promise.resolve(),
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const raw = await readBody(req);
      let body: Record<string, unknown> | undefined;
      try {
        body = raw.length ? (JSON.parse(raw.toString('utf8')) as Record<string, unknown>) : undefined;
      } catch {
        body = undefined;
      }
      const rec: Recorded = { method: req.method ?? 'GET', path: req.url ?? '/', body };
      proxy.requests.push(rec);
      const own = proxy.respond?.(rec);
      if (own) {
        res.writeHead(own.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(own.body));
        return;
      }
      const up = await request(`${upstream}${req.url}`, {
        method: (req.method ?? 'GET') as 'GET',
        headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
        body: raw.length ? raw : undefined,
      });
      let answer = Buffer.from(await up.body.arrayBuffer());
      rec.status = up.statusCode;
      await proxy.afterUpstream?.(rec);
      if (proxy.rewriteAnswer && String(up.headers['content-type'] ?? '').includes('json')) {
        const changed = proxy.rewriteAnswer(rec, JSON.parse(answer.toString('utf8')) as Record<string, unknown>);
        if (changed) answer = Buffer.from(JSON.stringify(changed));
      }
      res.writeHead(up.statusCode, { 'content-type': String(up.headers['content-type'] ?? 'application/json') });
      res.end(answer);
    })().catch(() => {
      if (opts.whenUpstreamDown === 'reset') {
        req.socket.destroy();
        return;
      }
      res.statusCode = 502;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  proxy.url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return proxy;
}

/** Writes of one kind for one version, e.g. transition-stage to Production (attempted, whether or not MLflow applied them). */
export function writes(p: RecordingProxy, path: string, match: Record<string, unknown>): Recorded[] {
  return p.requests.filter(
    (r) => r.method !== 'GET' && r.path.startsWith(`/api/2.0/mlflow/${path}`) && Object.entries(match).every(([k, v]) => String(r.body?.[k]) === String(v)),
  );
}

/** Of writes(), those MLflow applied (answered 2xx): the side effects. */
export function appliedWrites(p: RecordingProxy, path: string, match: Record<string, unknown>): Recorded[] {
  return writes(p, path, match).filter((r) => r.status !== undefined && r.status >= 200 && r.status < 300);
}
