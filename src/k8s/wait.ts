/**
 * Wait until one object reaches a final verdict: list to learn the current state and the collection's
 * resourceVersion, then watch from there; a 410 Expired (from the HTTP status or an ERROR event) means the
 * server no longer keeps events that old, so list again. The caller checkpoints the last resourceVersion it
 * was told about (`onProgress`) and passes it back as `resume` after a crash: the watch then replays whatever
 * happened while nobody watched, without a new list.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { K8sClient } from './client.js';
import { isK8sStatus } from './errors.js';
import type { Verdict } from './rollout.js';
import type { K8sObject, ResourceKind } from './types.js';

export interface WaitProgress {
  /** The newest resourceVersion whose state was judged `waiting`; undefined = list next. */
  resourceVersion?: string;
  why: string;
}

export interface WaitForObjectOptions {
  client: K8sClient;
  kind: ResourceKind;
  namespace: string;
  name: string;
  judge: (obj: K8sObject | undefined) => Verdict;
  /** Epoch ms after which the wait gives up with `deadline`. */
  deadlineAt: number;
  resume?: WaitProgress;
  onProgress: (p: WaitProgress) => void;
  /** Cancellation: abort ends the wait by throwing `signal.reason`. */
  signal: AbortSignal;
  /** Longest single watch request; the server may end it sooner. */
  watchTimeoutSeconds?: number;
  now?: () => number;
}

export type WaitOutcome = Exclude<Verdict, { status: 'waiting' }> | { status: 'deadline'; why: string };

/** A watch that ends faster than this without news is not re-opened at once (no hot loop on a flaky server). */
const MIN_WATCH_MS = 1_000;
/** How long past its timeoutSeconds a watch may stay open before we drop it ourselves. */
const WATCH_GRACE_S = 15;

export async function waitForObject(o: WaitForObjectOptions): Promise<WaitOutcome> {
  const now = o.now ?? Date.now;
  let rv = o.resume?.resourceVersion;
  let why = o.resume?.why ?? 'not observed yet';
  const progress = (): void => o.onProgress({ resourceVersion: rv, why });

  for (;;) {
    if (o.signal.aborted) throw o.signal.reason ?? new Error('wait cancelled');
    const remaining = o.deadlineAt - now();
    if (remaining <= 0) return { status: 'deadline', why };

    if (rv === undefined) {
      const { items, resourceVersion } = await o.client.list(o.kind, o.namespace, { name: o.name });
      const verdict = o.judge(items.find((i) => i.metadata?.name === o.name));
      if (verdict.status !== 'waiting') return verdict;
      why = verdict.why;
      rv = resourceVersion;
      progress();
      continue;
    }

    let final: WaitOutcome | undefined;
    let events = 0;
    const openedAt = now();
    const timeoutSeconds = Math.max(1, Math.min(o.watchTimeoutSeconds ?? 60, Math.ceil(remaining / 1000)));
    try {
      await o.client.watch(
        o.kind,
        o.namespace,
        { name: o.name, resourceVersion: rv, timeoutSeconds },
        (ev) => {
          events++;
          const evRv = ev.object?.metadata?.resourceVersion;
          if (ev.type === 'BOOKMARK') {
            // Nothing changed up to evRv: resuming from it is as good and less likely to expire.
            if (evRv) rv = evRv;
            progress();
            return;
          }
          if (ev.object?.metadata?.name !== undefined && ev.object.metadata.name !== o.name) return;
          const verdict = o.judge(ev.type === 'DELETED' ? undefined : ev.object);
          if (evRv) rv = evRv;
          if (verdict.status !== 'waiting') {
            final = verdict;
            return 'stop';
          }
          why = verdict.why;
          progress();
        },
        // Our own bound too: a half-open connection would otherwise hang until the deadline while the
        // heartbeat timer keeps the activity looking alive.
        AbortSignal.any([o.signal, AbortSignal.timeout(remaining), AbortSignal.timeout((timeoutSeconds + WATCH_GRACE_S) * 1000)]),
      );
    } catch (err) {
      if (!isK8sStatus(err, 410)) throw err;
      rv = undefined; // Expired: events since rv are gone, so the current state must come from a list.
      progress();
      continue;
    }
    if (final) return final;
    if (events === 0 && now() - openedAt < MIN_WATCH_MS && !o.signal.aborted) {
      await delay(MIN_WATCH_MS, undefined, { signal: o.signal }).catch(() => undefined);
    }
  }
}
