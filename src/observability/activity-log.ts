/**
 * One pino line per activity attempt, carrying the lifecycle's model, version and workflow id (activityLogger),
 * so a log query follows a version through the worker as it does through the API. Installed as a Temporal
 * activity interceptor: every activity gets it without code of its own. Inputs and results are never logged
 * (they can hold manifests or messages); only names, ids, timing and the failure's type and message.
 */
import type { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { ActivityInterceptors, ActivityInterceptorsFactory } from '@temporalio/worker';
import { activityLogger, type Logger } from './log.js';

function keyOf(args: readonly unknown[]): { model: string; version?: number } | undefined {
  const a = args[0] as { model?: unknown; version?: unknown } | undefined;
  if (!a || typeof a.model !== 'string') return undefined;
  return { model: a.model, ...(typeof a.version === 'number' ? { version: a.version } : {}) };
}

export function activityLogging(base: Logger): ActivityInterceptorsFactory {
  return (ctx: Context): ActivityInterceptors => ({
    inbound: {
      async execute(input, next) {
        const { info } = ctx;
        const key = keyOf(input.args);
        const log = key
          ? activityLogger(base, info, key)
          : base.child({ workflowId: info.workflowExecution?.workflowId, activity: info.activityType, attempt: info.attempt });
        const started = Date.now();
        try {
          const result = await next(input);
          log.info({ ms: Date.now() - started }, 'activity completed');
          return result;
        } catch (err) {
          const ms = Date.now() - started;
          const message = err instanceof Error ? err.message : String(err);
          if (err instanceof CancelledFailure) log.info({ ms }, 'activity cancelled');
          else if (err instanceof ApplicationFailure && err.nonRetryable) log.error({ ms, type: err.type, err: message }, 'activity failed (not retried)');
          else log.warn({ ms, type: err instanceof ApplicationFailure ? err.type : undefined, err: message }, 'activity failed (will be retried)');
          throw err;
        }
      },
    },
  });
}
