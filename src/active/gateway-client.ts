/**
 * ActiveVersionClient: for Node inference gateways. Keeps `current()` equal to what modelgate says is the
 * active version of one model by conditional polling (If-None-Match → mostly 304s with no body), emits
 * `change` when it changes, backs off on errors and keeps the last value meanwhile, so a gateway can label
 * every span and metric with the version without a call on its request path.
 *
 *   const active = new ActiveVersionClient({ baseUrl: 'http://modelgate:8080', model: 'churn' });
 *   await active.start();                       // first value (or the first error) before serving
 *   active.on('change', (v) => log.info({ version: v?.version }, 'model version changed'));
 *   span.setAttribute('model.version', active.current()?.version ?? 'unknown');
 */
import { EventEmitter } from 'node:events';
import { request, type Dispatcher } from 'undici';
import type { ActiveVersion } from './types.js';

export type { ActiveVersion } from './types.js';

export interface ActiveVersionClientOptions {
  /** modelgate API base URL, e.g. http://modelgate.modelgate.svc:8080 */
  baseUrl: string;
  model: string;
  /** Poll period while healthy; default 5 s. */
  intervalMs?: number;
  /** Ceiling of the error back-off; default 60 s. */
  maxBackoffMs?: number;
  /** Per request; default 5 s. */
  timeoutMs?: number;
  headers?: Record<string, string>;
  dispatcher?: Dispatcher;
}

export interface ActiveVersionClientEvents {
  /** The value changed (new version, or new facts about it); null: the model has no Production version. */
  change: [value: ActiveVersion | null, previous: ActiveVersion | null | undefined];
  /** A poll failed; the last value is kept. */
  error: [err: Error];
}

export class ActiveVersionError extends Error {
  override name = 'ActiveVersionError';
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export class ActiveVersionClient extends EventEmitter<ActiveVersionClientEvents> {
  readonly #url: string;
  readonly #intervalMs: number;
  readonly #maxBackoffMs: number;
  readonly #timeoutMs: number;
  readonly #headers: Record<string, string>;
  readonly #dispatcher?: Dispatcher;
  /** undefined: not known yet; null: no Production version. */
  #value: ActiveVersion | null | undefined;
  #etag: string | undefined;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #inflight: Promise<void> | undefined;
  #lastOkAt: number | undefined;

  constructor(opts: ActiveVersionClientOptions) {
    super();
    if (!opts.model) throw new Error('ActiveVersionClient: model is required');
    let base: URL;
    try {
      base = new URL(opts.baseUrl);
    } catch {
      throw new Error(`ActiveVersionClient: baseUrl is not a URL (got ${JSON.stringify(opts.baseUrl)})`);
    }
    this.#url = `${base.origin}${base.pathname.replace(/\/+$/, '')}/v1/models/${encodeURIComponent(opts.model)}/active`;
    this.#intervalMs = opts.intervalMs ?? 5_000;
    this.#maxBackoffMs = opts.maxBackoffMs ?? 60_000;
    this.#timeoutMs = opts.timeoutMs ?? 5_000;
    this.#headers = { accept: 'application/json', ...opts.headers };
    this.#dispatcher = opts.dispatcher;
    // An 'error' event without a listener would throw; a gateway that ignores errors still keeps its value.
    this.on('error', () => undefined);
  }

  /** Last known value: undefined before the first answer, null when the model has no Production version. */
  current(): ActiveVersion | null | undefined {
    return this.#value;
  }

  /** When the server last answered (200/304/404), ms since epoch. */
  lastSuccessAt(): number | undefined {
    return this.#lastOkAt;
  }

  /**
   * Poll once now and keep polling. Resolves with the first value; rejects only when that first poll failed
   * (polling goes on with back-off either way, so a gateway may choose to start serving regardless).
   */
  async start(): Promise<ActiveVersion | null> {
    if (this.#running) return this.refresh();
    this.#running = true;
    try {
      return await this.refresh();
    } finally {
      this.#schedule();
    }
  }

  /** Stop polling (the value stays readable). */
  stop(): void {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Poll now (joins a poll under way). Rejects when the poll fails; the value is kept. */
  async refresh(): Promise<ActiveVersion | null> {
    this.#inflight ??= this.#poll().finally(() => {
      this.#inflight = undefined;
    });
    await this.#inflight;
    return this.#value ?? null;
  }

  /** Delay before the next poll: the interval while healthy, exponential back-off with jitter after errors. */
  nextDelayMs(): number {
    if (this.#failures === 0) return this.#intervalMs;
    const exp = Math.min(this.#maxBackoffMs, this.#intervalMs * 2 ** Math.min(this.#failures, 16));
    return Math.round(exp / 2 + Math.random() * (exp / 2));
  }

  #schedule(): void {
    if (!this.#running) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.refresh().then(
        () => this.#schedule(),
        () => this.#schedule(),
      );
    }, this.nextDelayMs());
    // A gateway's own server keeps the process alive; this poller must not.
    this.#timer.unref();
  }

  async #poll(): Promise<void> {
    try {
      const headers = { ...this.#headers, ...(this.#etag ? { 'if-none-match': this.#etag } : {}) };
      const res = await request(this.#url, {
        method: 'GET',
        headers,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
        signal: AbortSignal.timeout(this.#timeoutMs),
        ...(this.#dispatcher ? { dispatcher: this.#dispatcher } : {}),
      });
      const text = await res.body.text();
      if (res.statusCode === 304) {
        this.#ok();
        return;
      }
      if (res.statusCode === 200) {
        const value = JSON.parse(text) as ActiveVersion;
        const etag = typeof res.headers.etag === 'string' ? res.headers.etag : undefined;
        const changed = etag === undefined || etag !== this.#etag || this.#value === undefined;
        this.#etag = etag;
        this.#ok();
        if (changed) this.#set(value);
        else if (this.#value) this.#value = value; // same content; keeps the stale marker current
        return;
      }
      if (res.statusCode === 404 && /no_production_version/.test(text)) {
        this.#etag = undefined;
        this.#ok();
        if (this.#value !== null) this.#set(null);
        return;
      }
      throw new ActiveVersionError(`GET ${this.#url}: HTTP ${res.statusCode} ${text.slice(0, 200)}`, res.statusCode);
    } catch (err) {
      this.#failures++;
      const e = err instanceof Error ? err : new Error(String(err));
      this.emit('error', e);
      throw e;
    }
  }

  #ok(): void {
    this.#failures = 0;
    this.#lastOkAt = Date.now();
  }

  #set(value: ActiveVersion | null): void {
    const previous = this.#value;
    this.#value = value;
    this.emit('change', value, previous);
  }
}
