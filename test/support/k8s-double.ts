/**
 * A local double of the Kubernetes API server, enough of the REST contract for the real
 * @kubernetes/client-node (reached through a generated kubeconfig, http + bearer token):
 * GET / LIST (list metadata.resourceVersion, fieldSelector metadata.name) / WATCH (newline-delimited JSON
 * ADDED, MODIFIED, DELETED, BOOKMARK; a resourceVersion older than the retained events → ERROR event with a
 * 410 Expired Status, or an HTTP 410) / PUT and merge PATCH with resourceVersion preconditions (409) / a
 * per-verb RBAC switch (403) for the CRD kinds of test/support/k8s-crds.ts. Every object is checked against its
 * CRD schema (read from MODELGATE_CRD_DIR; without the schemas, against the kind's structure only) when it is
 * written and again every time it is served: a non-conforming object is refused (the write throws; a read
 * answers 500) and recorded in `violations`.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { K8sObject, ResourceKind } from '../../src/k8s/types.js';
import { crdKinds, type CrdKind } from './k8s-crds.js';

export type DoubleVerb = 'get' | 'list' | 'watch' | 'update' | 'patch' | 'create' | 'delete';

export interface RecordedRequest {
  verb: DoubleVerb;
  plural: string;
  namespace: string;
  name?: string;
  /** The resourceVersion a list/watch asked for, or a write carried. */
  resourceVersion?: string;
  status: number;
  at: number;
}

export interface K8sDoubleOptions {
  /** Bearer token the kubeconfig carries and the double requires. */
  token?: string;
  /** How often an open watch with allowWatchBookmarks gets a BOOKMARK. */
  bookmarkIntervalMs?: number;
  /** Events kept for watches to resume from; older resourceVersions are answered 410. */
  retainEvents?: number;
  /** How an expired watch resourceVersion is answered: ERROR event on a 200 stream (what kube-apiserver does) or HTTP 410. */
  expiredAs?: 'event' | 'http';
}

interface StoredEvent {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  key: string;
  namespace: string;
  object: K8sObject;
}

interface OpenWatch {
  key: string;
  namespace: string;
  name?: string;
  res: ServerResponse;
  close: () => void;
}

const USER = 'system:serviceaccount:modelgate:modelgate-worker';

export class K8sDouble {
  readonly url: string;
  readonly token: string;
  /** Every API request, in order. */
  readonly requests: RecordedRequest[] = [];
  /** Objects that failed their CRD schema (or structure), with why (empty in a passing test). */
  readonly violations: string[] = [];

  private rv = 1;
  /** Events with rv <= compactedRv are gone. */
  private compactedRv = 1;
  private readonly objects = new Map<string, Map<string, K8sObject>>();
  private readonly events: StoredEvent[] = [];
  private readonly watches = new Set<OpenWatch>();
  private readonly denied = new Set<string>();
  private readonly kinds: Map<string, CrdKind>;
  private racedWrites = 0;

  private constructor(
    private readonly server: Server,
    private readonly opts: Required<K8sDoubleOptions>,
  ) {
    const { port } = server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
    this.token = opts.token;
    this.kinds = crdKinds();
  }

  static async start(options: K8sDoubleOptions = {}): Promise<K8sDouble> {
    const opts: Required<K8sDoubleOptions> = {
      token: options.token ?? `token-${randomUUID()}`,
      bookmarkIntervalMs: options.bookmarkIntervalMs ?? 1_000,
      retainEvents: options.retainEvents ?? 1_000,
      expiredAs: options.expiredAs ?? 'event',
    };
    crdKinds(); // compile before listening, so the first request is not slow
    const ref: { double?: K8sDouble } = {};
    const server = createServer((req, res) => {
      ref.double!.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) sendStatus(res, 500, 'InternalError', err instanceof Error ? err.message : String(err));
        else res.destroy();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    ref.double = new K8sDouble(server, opts);
    return ref.double;
  }

  async close(): Promise<void> {
    for (const w of this.watches) w.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** A kubeconfig for the real client: http server, token user, current context set. */
  writeKubeconfig(dir: string, opts: { token?: string } = {}): string {
    const path = join(dir, `kubeconfig-${randomUUID().slice(0, 8)}.yaml`);
    const config = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'double', cluster: { server: this.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'modelgate', user: { token: opts.token ?? this.token } }],
      contexts: [{ name: 'double', context: { cluster: 'double', user: 'modelgate' } }],
      'current-context': 'double',
    };
    writeFileSync(path, stringify(config), { mode: 0o600 });
    return path;
  }

  // ---------------------------------------------------------------- test controls

  /** Answer 403 to `verb` on `kind` (all kinds when omitted) until `allow`. */
  deny(verb: DoubleVerb, kind?: ResourceKind): void {
    this.denied.add(`${verb}:${kind ? keyOf(kind) : '*'}`);
  }

  allow(): void {
    this.denied.clear();
  }

  /**
   * The next `n` PUT/PATCH requests find the object changed by someone else just before them (a concurrent
   * writer bumps its resourceVersion), so a precondition on the version they read fails with 409.
   */
  raceNextWrites(n = 1): void {
    this.racedWrites += n;
  }

  /** Forget all retained events: any watch resuming from an older resourceVersion now gets 410. */
  compact(): void {
    this.compactedRv = this.rv;
    this.events.length = 0;
  }

  /** Compact, and end every open watch with an ERROR 410 event (what a restarted apiserver's watchers see). */
  expireWatches(): void {
    this.compact();
    for (const w of [...this.watches]) {
      writeLine(w.res, { type: 'ERROR', object: statusBody(410, 'Expired', 'too old resource version') });
      w.close();
    }
  }

  /** How many watches are open (optionally for one kind, in one namespace). */
  openWatches(kind?: ResourceKind, namespace?: string): number {
    return [...this.watches].filter((w) => (!kind || w.key === keyOf(kind)) && (!namespace || w.namespace === namespace)).length;
  }

  requestsFor(kind: ResourceKind, verb?: DoubleVerb): RecordedRequest[] {
    return this.requests.filter((r) => r.plural === kind.plural && (!verb || r.verb === verb));
  }

  /** What stored and served objects are held to: the published CRD schemas, or (schemas absent) their structure. */
  get checkedAgainst(): CrdKind['checkedAgainst'] {
    return [...this.kinds.values()].every((k) => k.checkedAgainst === 'crd') ? 'crd' : 'structure';
  }

  /** Throws when any served or written object failed its schema. */
  assertConforming(): void {
    if (this.violations.length) throw new Error(`the API double saw non-conforming objects:\n${this.violations.join('\n')}`);
  }

  // ---------------------------------------------------------------- store (test side)

  /** Create an object (as an admin would); returns the stored copy. Throws if it does not conform. */
  create(kind: ResourceKind, object: K8sObject, opts: { unchecked?: boolean } = {}): K8sObject {
    const key = keyOf(kind);
    const ns = object.metadata?.namespace;
    const name = object.metadata?.name;
    if (!ns || !name) throw new Error('create: metadata.namespace and metadata.name are required');
    if (this.bucket(key).has(`${ns}/${name}`)) throw new Error(`create: ${key} ${ns}/${name} exists`);
    const stored = structuredClone(object);
    stored.metadata = {
      ...stored.metadata,
      uid: randomUUID(),
      generation: 1,
      creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      resourceVersion: String(++this.rv),
    };
    if (!opts.unchecked) this.checkOrThrow(key, stored, 'create');
    this.bucket(key).set(`${ns}/${name}`, stored);
    this.emit({ rv: this.rv, type: 'ADDED', key, namespace: ns, object: stored });
    return structuredClone(stored);
  }

  /** The stored object (a copy), or undefined. */
  read(kind: ResourceKind, namespace: string, name: string): K8sObject | undefined {
    const o = this.bucket(keyOf(kind)).get(`${namespace}/${name}`);
    return o ? structuredClone(o) : undefined;
  }

  /**
   * Change an object the way a controller would: `mutate` edits a copy in place. A changed spec bumps
   * metadata.generation. Throws (and stores nothing) if the result does not conform.
   */
  modify(kind: ResourceKind, namespace: string, name: string, mutate: (o: K8sObject) => void, opts: { unchecked?: boolean } = {}): K8sObject {
    const key = keyOf(kind);
    const current = this.bucket(key).get(`${namespace}/${name}`);
    if (!current) throw new Error(`modify: ${key} ${namespace}/${name} not found`);
    const next = structuredClone(current);
    mutate(next);
    return this.store(key, current, next, !opts.unchecked);
  }

  remove(kind: ResourceKind, namespace: string, name: string): void {
    const key = keyOf(kind);
    const current = this.bucket(key).get(`${namespace}/${name}`);
    if (!current) return;
    this.bucket(key).delete(`${namespace}/${name}`);
    const gone = { ...structuredClone(current), metadata: { ...current.metadata, resourceVersion: String(++this.rv) } };
    this.emit({ rv: this.rv, type: 'DELETED', key, namespace, object: gone });
  }

  // ---------------------------------------------------------------- HTTP

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const m = /^\/apis\/([^/]+)\/([^/]+)\/namespaces\/([^/]+)\/([^/]+)(?:\/([^/]+))?(?:\/(status))?$/.exec(url.pathname);
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      return sendStatus(res, 401, 'Unauthorized', 'Unauthorized');
    }
    if (!m) return sendStatus(res, 404, 'NotFound', `the server could not find the requested resource (${url.pathname})`);
    const [, group, version, nsRaw, plural, nameRaw, sub] = m;
    const namespace = decodeURIComponent(nsRaw);
    const name = nameRaw ? decodeURIComponent(nameRaw) : undefined;
    const key = `${group}/${plural}`;
    const kind = this.kinds.get(key);
    if (!kind || kind.version !== version) {
      return sendStatus(res, 404, 'NotFound', `the server could not find the requested resource (${url.pathname})`);
    }
    const q = url.searchParams;
    const watch = q.get('watch') === 'true' || q.get('watch') === '1';
    const verb: DoubleVerb =
      req.method === 'GET' ? (name ? 'get' : watch ? 'watch' : 'list')
      : req.method === 'PUT' ? 'update'
      : req.method === 'PATCH' ? 'patch'
      : req.method === 'POST' ? 'create'
      : 'delete';
    const record = (status: number, resourceVersion?: string): void => {
      this.requests.push({ verb, plural: plural, namespace, name, resourceVersion, status, at: Date.now() });
    };
    const body = req.method === 'PUT' || req.method === 'PATCH' || req.method === 'POST' ? await readJson(req) : undefined;

    if (this.denied.has(`${verb}:${key}`) || this.denied.has(`${verb}:*`)) {
      record(403);
      const what = `${plural}.${group}${name ? ` "${name}"` : ''}`;
      return sendStatus(
        res,
        403,
        'Forbidden',
        `${what} is forbidden: User "${USER}" cannot ${verb} resource "${plural}" in API group "${group}" in the namespace "${namespace}"`,
        { group, kind: plural, name },
      );
    }

    if (verb === 'get') {
      const o = this.bucket(key).get(`${namespace}/${name}`);
      if (!o) {
        record(404);
        return sendStatus(res, 404, 'NotFound', `${plural}.${group} "${name}" not found`, { group, kind: plural, name });
      }
      const problems = this.serveCheck(key, o);
      record(problems ? 500 : 200);
      if (problems) return sendStatus(res, 500, 'InternalError', problems);
      return sendJson(res, 200, o);
    }

    if (verb === 'list') {
      const items = this.matching(key, namespace, fieldName(q.get('fieldSelector')));
      for (const o of items) {
        const problems = this.serveCheck(key, o);
        if (problems) {
          record(500);
          return sendStatus(res, 500, 'InternalError', problems);
        }
      }
      record(200, q.get('resourceVersion') ?? undefined);
      return sendJson(res, 200, {
        apiVersion: `${group}/${version}`,
        kind: `${kind.kind}List`,
        metadata: { resourceVersion: String(this.rv) },
        items,
      });
    }

    if (verb === 'watch') return this.startWatch(req, res, key, kind, namespace, q, record);

    if (verb === 'update' || verb === 'patch') {
      const current = this.bucket(key).get(`${namespace}/${name}`);
      if (!current) {
        record(404);
        return sendStatus(res, 404, 'NotFound', `${plural}.${group} "${name}" not found`, { group, kind: plural, name });
      }
      if (this.racedWrites > 0) {
        this.racedWrites--;
        this.modify(kind, namespace, name!, (o) => {
          o.metadata!.labels = { ...o.metadata!.labels, 'double.test/concurrent-writes': String(this.rv) };
        });
      }
      const latest = this.bucket(key).get(`${namespace}/${name}`)!;
      const b = (body ?? {}) as K8sObject;
      const wanted = b.metadata?.resourceVersion;
      if (verb === 'update' && !wanted) {
        record(422);
        return sendStatus(res, 422, 'Invalid', `${kind.kind}.${group} "${name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update`);
      }
      if (wanted && wanted !== latest.metadata?.resourceVersion) {
        record(409, wanted);
        return sendStatus(
          res,
          409,
          'Conflict',
          `Operation cannot be fulfilled on ${plural}.${group} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
          { group, kind: plural, name },
        );
      }
      let next: K8sObject;
      if (verb === 'update') next = structuredClone(b);
      else {
        const type = String(req.headers['content-type'] ?? '').split(';')[0];
        if (type !== 'application/merge-patch+json') {
          record(415);
          return sendStatus(res, 415, 'UnsupportedMediaType', `the double supports only application/merge-patch+json, not ${type}`);
        }
        next = mergePatch(structuredClone(latest), b) as K8sObject;
      }
      if (sub === 'status') next = { ...structuredClone(latest), status: next.status };
      else if (kind.statusSubresource) next.status = structuredClone(latest.status);
      next.metadata = { ...next.metadata, name, namespace };
      const problems = kind.check(next);
      if (problems.length) {
        record(422, wanted);
        return sendStatus(res, 422, 'Invalid', `${kind.kind}.${group} "${name}" is invalid: ${problems.join('; ')}`);
      }
      const stored = this.store(key, latest, next, true);
      record(200, wanted);
      return sendJson(res, 200, stored);
    }

    record(405);
    return sendStatus(res, 405, 'MethodNotAllowed', `the double does not implement ${req.method} here`);
  }

  private startWatch(
    req: IncomingMessage,
    res: ServerResponse,
    key: string,
    kind: CrdKind,
    namespace: string,
    q: URLSearchParams,
    record: (status: number, rv?: string) => void,
  ): void {
    const name = fieldName(q.get('fieldSelector'));
    const from = q.get('resourceVersion') ?? undefined;
    const fromRv = from && from !== '0' ? Number(from) : undefined;
    const expired = fromRv !== undefined && (!Number.isFinite(fromRv) || fromRv < this.compactedRv);
    if (expired && this.opts.expiredAs === 'http') {
      record(410, from);
      return sendStatus(res, 410, 'Expired', `too old resource version: ${from} (${this.compactedRv})`);
    }
    record(200, from);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    if (expired) {
      writeLine(res, { type: 'ERROR', object: statusBody(410, 'Expired', `too old resource version: ${from} (${this.compactedRv})`) });
      res.end();
      return;
    }
    const timers: NodeJS.Timeout[] = [];
    const w: OpenWatch = {
      key,
      namespace,
      name,
      res,
      close: () => {
        if (!this.watches.delete(w)) return;
        timers.forEach(clearTimeout);
        timers.forEach(clearInterval);
        res.end();
      },
    };
    this.watches.add(w);
    req.on('close', w.close);
    res.on('close', w.close);
    // Initial state: "most recent" watches get the current objects as ADDED; resuming ones get what they missed.
    if (fromRv === undefined) {
      for (const o of this.matching(key, namespace, name)) this.send(w, kind, { type: 'ADDED', object: o });
    } else {
      for (const e of this.events) {
        if (e.rv > fromRv && this.matches(w, e)) this.send(w, kind, { type: e.type, object: e.object });
      }
    }
    if (q.get('allowWatchBookmarks') === 'true') {
      timers.push(
        setInterval(() => {
          writeLine(res, {
            type: 'BOOKMARK',
            object: { apiVersion: `${kind.group}/${kind.version}`, kind: kind.kind, metadata: { resourceVersion: String(this.rv) } },
          });
        }, this.opts.bookmarkIntervalMs),
      );
    }
    const timeoutSeconds = Number(q.get('timeoutSeconds') ?? 0);
    if (timeoutSeconds > 0) timers.push(setTimeout(w.close, timeoutSeconds * 1000));
  }

  // ---------------------------------------------------------------- internals

  private bucket(key: string): Map<string, K8sObject> {
    let b = this.objects.get(key);
    if (!b) this.objects.set(key, (b = new Map<string, K8sObject>()));
    return b;
  }

  private matching(key: string, namespace: string, name?: string): K8sObject[] {
    return [...this.bucket(key).values()].filter((o) => o.metadata?.namespace === namespace && (!name || o.metadata?.name === name));
  }

  private matches(w: OpenWatch, e: StoredEvent): boolean {
    return e.key === w.key && e.namespace === w.namespace && (!w.name || e.object.metadata?.name === w.name);
  }

  private store(key: string, current: K8sObject, next: K8sObject, check: boolean): K8sObject {
    const { metadata: curMeta, ...curRest } = current;
    const { metadata: nextMeta, ...nextRest } = next;
    const kind = this.kinds.get(key)!;
    // With a status subresource only spec changes are a new generation; without one any non-metadata change is.
    const changed = kind.statusSubresource
      ? JSON.stringify(current['spec']) !== JSON.stringify(next['spec'])
      : JSON.stringify(curRest) !== JSON.stringify(nextRest);
    const stored: K8sObject = {
      ...next,
      metadata: {
        ...nextMeta,
        uid: curMeta?.uid,
        creationTimestamp: curMeta?.creationTimestamp,
        generation: (curMeta?.generation ?? 1) + (changed ? 1 : 0),
        resourceVersion: String(this.rv + 1),
      },
    };
    if (check) this.checkOrThrow(key, stored, 'write');
    this.rv++;
    const ns = stored.metadata!.namespace!;
    this.bucket(key).set(`${ns}/${stored.metadata!.name}`, stored);
    this.emit({ rv: this.rv, type: 'MODIFIED', key, namespace: ns, object: stored });
    return structuredClone(stored);
  }

  private emit(e: StoredEvent): void {
    this.events.push({ ...e, object: structuredClone(e.object) });
    while (this.events.length > this.opts.retainEvents) this.compactedRv = this.events.shift()!.rv;
    const kind = this.kinds.get(e.key)!;
    for (const w of this.watches) if (this.matches(w, e)) this.send(w, kind, { type: e.type, object: e.object });
  }

  private send(w: OpenWatch, kind: CrdKind, ev: { type: string; object: K8sObject }): void {
    const problems = this.serveCheck(w.key, ev.object);
    if (problems) {
      writeLine(w.res, { type: 'ERROR', object: statusBody(500, 'InternalError', problems) });
      w.close();
      return;
    }
    writeLine(w.res, ev);
  }

  private checkOrThrow(key: string, o: K8sObject, what: string): void {
    const problems = this.kinds.get(key)!.check(o);
    if (problems.length) {
      const msg = `${what} ${key} ${o.metadata?.namespace}/${o.metadata?.name} does not conform to its CRD: ${problems.join('; ')}`;
      this.violations.push(msg);
      throw new Error(msg);
    }
  }

  /** undefined when the object conforms; otherwise the recorded violation. */
  private serveCheck(key: string, o: K8sObject): string | undefined {
    const problems = this.kinds.get(key)!.check(o);
    if (!problems.length) return undefined;
    const msg = `served ${key} ${o.metadata?.namespace}/${o.metadata?.name} does not conform to its CRD: ${problems.join('; ')}`;
    this.violations.push(msg);
    return msg;
  }
}

function keyOf(kind: ResourceKind): string {
  return `${kind.group}/${kind.plural}`;
}

function fieldName(selector: string | null): string | undefined {
  const m = selector ? /(?:^|,)metadata\.name=([^,]+)/.exec(selector) : null;
  return m ? m[1] : undefined;
}

function statusBody(code: number, reason: string, message: string, details?: object): object {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

function sendStatus(res: ServerResponse, code: number, reason: string, message: string, details?: object): void {
  sendJson(res, code, statusBody(code, reason, message, details));
}

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function writeLine(res: ServerResponse, ev: unknown): void {
  if (!res.writableEnded) res.write(`${JSON.stringify(ev)}\n`);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : undefined;
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!patch || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target && typeof target === 'object' && !Array.isArray(target) ? { ...(target) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}
