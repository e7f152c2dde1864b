/**
 * The narrow Kubernetes surface modelgate needs — read one custom object, list it with the collection's
 * resourceVersion, watch it from a resourceVersion, replace it — implemented on the real
 * @kubernetes/client-node. Activities take the `K8sClient` interface, so a test can point the real
 * implementation at an API double through a kubeconfig file and nothing else changes.
 */
import {
  ApiException,
  CustomObjectsApi,
  KubeConfig,
  Observable,
  Watch,
  type ConfigurationOptions,
  type ObservableMiddleware,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { K8sApiError, parseStatus, type K8sCallSite, type Verb } from './errors.js';
import { resourceName, type K8sObject, type ResourceKind, type WatchEvent } from './types.js';

export interface ListResult {
  items: K8sObject[];
  /** The collection's resourceVersion: where a watch continues from. */
  resourceVersion: string;
}

export interface WatchOptions {
  /** Only this object (`fieldSelector=metadata.name=…`). */
  name?: string;
  /** Events after this version; undefined = current state as ADDED events, then changes. */
  resourceVersion?: string;
  /** Ask the server to end the stream after this long (it may end it sooner). */
  timeoutSeconds?: number;
}

/** Return `'stop'` to end the watch after this event. */
export type WatchHandler = (event: WatchEvent) => 'stop' | void;

export interface K8sClient {
  /** The object, or undefined when it does not exist (404). */
  get(kind: ResourceKind, namespace: string, name: string): Promise<K8sObject | undefined>;
  list(kind: ResourceKind, namespace: string, opts?: { name?: string }): Promise<ListResult>;
  /**
   * Resolves when the stream ends (server timeout, `'stop'`, or `signal` aborted); rejects with K8sApiError
   * for an HTTP error or an ERROR event (410 Expired comes either way), or with the transport error.
   */
  watch(kind: ResourceKind, namespace: string, opts: WatchOptions, onEvent: WatchHandler, signal?: AbortSignal): Promise<void>;
  /** PUT with the object's metadata.resourceVersion as precondition: a stale one is a 409 K8sApiError. */
  replace(kind: ResourceKind, namespace: string, name: string, object: K8sObject): Promise<K8sObject>;
}

/** Where the cluster credentials come from. */
export type KubeConfigSource = { kind: 'file'; path: string } | { kind: 'in-cluster' } | { kind: 'default' };

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export function loadKubeConfig(source: KubeConfigSource): KubeConfig {
  const kc = new KubeConfig();
  if (source.kind === 'file') kc.loadFromFile(source.path);
  else if (source.kind === 'in-cluster') kc.loadFromCluster();
  else {
    // The library's last resort is an unauthenticated http://localhost:8080; treat "nothing found" as that.
    const found = !!process.env.KUBECONFIG || existsSync(join(homedir(), '.kube', 'config')) || existsSync(SERVICE_ACCOUNT_TOKEN);
    if (!found) throw new Error(`no Kubernetes configuration found (KUBECONFIG unset, no ~/.kube/config, no ${SERVICE_ACCOUNT_TOKEN})`);
    // KUBECONFIG, then ~/.kube/config, then the in-cluster service account.
    kc.loadFromDefault();
  }
  if (!kc.getCurrentCluster()) throw new Error(`kubeconfig (${source.kind}) has no current cluster`);
  return kc;
}

export interface KubernetesClientOptions {
  /** Bound on get/list/replace; watches are bounded by their own timeoutSeconds and abort signal. */
  requestTimeoutMs?: number;
}

export class KubernetesClient implements K8sClient {
  private readonly api: CustomObjectsApi;
  private readonly watcher: Watch;
  private readonly requestTimeoutMs: number;

  constructor(kc: KubeConfig, opts: KubernetesClientOptions = {}) {
    this.api = kc.makeApiClient(CustomObjectsApi);
    this.watcher = new Watch(kc);
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
  }

  async get(kind: ResourceKind, namespace: string, name: string): Promise<K8sObject | undefined> {
    const site = callSite('get', kind, namespace, name);
    try {
      return (await this.api.getNamespacedCustomObject(
        { group: kind.group, version: kind.version, namespace, plural: kind.plural, name },
        this.options(),
      )) as K8sObject;
    } catch (err) {
      const e = toApiError(err, site);
      if (e instanceof K8sApiError && e.status === 404) return undefined;
      throw e;
    }
  }

  async list(kind: ResourceKind, namespace: string, opts: { name?: string } = {}): Promise<ListResult> {
    const site = callSite('list', kind, namespace);
    try {
      const res = (await this.api.listNamespacedCustomObject(
        {
          group: kind.group,
          version: kind.version,
          namespace,
          plural: kind.plural,
          fieldSelector: opts.name ? `metadata.name=${opts.name}` : undefined,
        },
        this.options(),
      )) as { items?: K8sObject[]; metadata?: { resourceVersion?: string } };
      const resourceVersion = res.metadata?.resourceVersion;
      if (!resourceVersion) throw new Error(`${site.verb} ${site.resource}: list response without metadata.resourceVersion`);
      return { items: res.items ?? [], resourceVersion };
    } catch (err) {
      throw toApiError(err, site);
    }
  }

  async replace(kind: ResourceKind, namespace: string, name: string, object: K8sObject): Promise<K8sObject> {
    const site = callSite('update', kind, namespace, name);
    try {
      return (await this.api.replaceNamespacedCustomObject(
        { group: kind.group, version: kind.version, namespace, plural: kind.plural, name, body: object },
        this.options(),
      )) as K8sObject;
    } catch (err) {
      throw toApiError(err, site);
    }
  }

  watch(kind: ResourceKind, namespace: string, opts: WatchOptions, onEvent: WatchHandler, signal?: AbortSignal): Promise<void> {
    const site = callSite('watch', kind, namespace, opts.name);
    const path = `/apis/${kind.group}/${kind.version}/namespaces/${encodeURIComponent(namespace)}/${kind.plural}`;
    return new Promise<void>((resolve, reject) => {
      let controller: AbortController | undefined;
      let settled = false;
      const finish = (err?: unknown): void => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        controller?.abort();
        if (err) reject(err instanceof Error ? err : new Error(`watch failed: ${JSON.stringify(err)}`));
        else resolve();
      };
      const onAbort = (): void => finish();
      if (signal?.aborted) return finish();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.watcher
        .watch(
          path,
          {
            fieldSelector: opts.name ? `metadata.name=${opts.name}` : undefined,
            resourceVersion: opts.resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds: opts.timeoutSeconds,
          },
          (type: string, object: unknown) => {
            if (settled) return;
            if (type === 'ERROR') {
              const s = parseStatus(object);
              return finish(new K8sApiError(s?.code ?? 500, s?.reason, site, s?.message));
            }
            try {
              if (onEvent({ type: type as WatchEvent['type'], object: object as K8sObject }) === 'stop') finish();
            } catch (err) {
              finish(err);
            }
          },
          (err: unknown) => finish(err ? toApiError(err, site) : undefined),
        )
        .then(
          (c) => {
            controller = c;
            if (settled) c.abort();
          },
          (err: unknown) => finish(toApiError(err, site)),
        );
    });
  }

  /** A per-request deadline, so a hung connection surfaces as an error the activity can retry. */
  private options(): ConfigurationOptions {
    const timeoutMs = this.requestTimeoutMs;
    const deadline: ObservableMiddleware = {
      pre: (ctx: RequestContext) => {
        ctx.setSignal(AbortSignal.timeout(timeoutMs));
        return new Observable(Promise.resolve(ctx));
      },
      post: (res: ResponseContext) => new Observable(Promise.resolve(res)),
    };
    return { middleware: [deadline], middlewareMergeStrategy: 'append' };
  }
}

function callSite(verb: Verb, kind: ResourceKind, namespace: string, name?: string): K8sCallSite {
  return { verb, resource: resourceName(kind), namespace, name };
}

/** ApiException (typed calls) and `{ statusCode }` errors (Watch) → K8sApiError; transport errors pass through. */
function toApiError(err: unknown, site: K8sCallSite): unknown {
  if (err instanceof K8sApiError) return err;
  if (err instanceof ApiException) {
    const s = parseStatus(err.body);
    return new K8sApiError(err.code, s?.reason, site, s?.message);
  }
  const code = (err as { statusCode?: unknown } | null)?.statusCode;
  if (typeof code === 'number') return new K8sApiError(code, (err as Error).message || undefined, site);
  return err;
}
