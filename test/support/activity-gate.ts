/**
 * Holds chosen activity attempts at the door of the worker (an activity interceptor), the way a paused or
 * partitioned worker would: the attempt has been dispatched but its body has not run yet. The test opens the
 * gate when it has seen what it wants to see happen meanwhile.
 */
import type { Context } from '@temporalio/activity';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';

export interface HeldAttempt {
  activity: string;
  model: string;
  version?: number;
  attempt: number;
}

export class ActivityGate {
  #rules: Array<{ match: (a: HeldAttempt) => boolean; open: Promise<void>; release: () => void; held: HeldAttempt[] }> = [];

  /** Hold every attempt `match` accepts until the returned `release` is called. */
  hold(match: (a: HeldAttempt) => boolean): { release: () => void; held: HeldAttempt[] } {
    let release!: () => void;
    const open = new Promise<void>((r) => (release = r));
    const rule = { match, open, release, held: [] as HeldAttempt[] };
    this.#rules.push(rule);
    return { release, held: rule.held };
  }

  interceptor(): ActivityInterceptorsFactory {
    return (ctx: Context) => ({
      inbound: {
        execute: async (input, next) => {
          const a = input.args[0] as { model?: unknown; version?: unknown } | undefined;
          if (a && typeof a.model === 'string') {
            const attempt: HeldAttempt = {
              activity: ctx.info.activityType,
              model: a.model,
              ...(typeof a.version === 'number' ? { version: a.version } : {}),
              attempt: ctx.info.attempt,
            };
            for (const rule of this.#rules) {
              if (!rule.match(attempt)) continue;
              rule.held.push(attempt);
              await rule.open;
            }
          }
          return next(input);
        },
      },
    });
  }
}
