/**
 * Structured logs (pino). Every logged object, child logger binding and message goes through redact.ts: a
 * value under a secret-looking key (token, secret, password, authorization, cookie, api key …) at any depth
 * becomes "[redacted]" and URL userinfo is masked, so a config, request or error dumped by mistake still never
 * prints a credential.
 */
import { pino, type Logger } from 'pino';
import { lifecycleWorkflowId } from '../workflows/definitions.js';
import { redact } from './redact.js';
import { maskUrlCredentials } from '../util/url-credentials.js';

export type { Logger };

export function createLogger(level: string = 'info', bindings: Record<string, unknown> = {}, stream?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: redact({ service: 'modelgate', ...bindings }),
    formatters: { log: (obj) => redact(obj) },
    serializers: {
      // formatters.log has already turned errors into plain serialized objects; pino's default `err`
      // serializer would serialize that object again, as type "Object".
      err: (v: unknown) => redact(v),
      // `log.error(err)` takes the error's message as the line's message: mask URLs there too.
      msg: (v: unknown) => (typeof v === 'string' ? maskUrlCredentials(v) : v),
    },
  };
  const logger = stream ? pino(options, stream) : pino(options);
  return redactChildBindings(logger);
}

/**
 * pino runs `formatters.bindings` on the root's bindings only (children reset it), so `child()` is wrapped
 * instead. Children are created from their parent with Object.create, so they inherit the wrapper.
 */
function redactChildBindings(logger: Logger): Logger {
  type Child = (this: Logger, bindings: pino.Bindings, options?: pino.ChildLoggerOptions) => Logger;
  const original = (Object.getPrototypeOf(logger) as { child: Child }).child;
  const wrapped: Child = function (bindings, options) {
    return original.call(this, redact(bindings), options);
  };
  logger.child = wrapped as unknown as Logger['child'];
  return logger;
}

export interface LifecycleBindings {
  model: string;
  version: number;
  workflowId?: string;
}

/**
 * A child logger whose every line carries model, version and workflow id, so one `grep`/Loki query follows a
 * version through the worker and the API. The workflow id defaults to the lifecycle's business-key id.
 */
export function lifecycleLogger(base: Logger, b: LifecycleBindings, extra: Record<string, unknown> = {}): Logger {
  return base.child({ model: b.model, version: b.version, workflowId: b.workflowId ?? lifecycleWorkflowId(b.model, b.version), ...extra });
}

/**
 * For activities: the lifecycle bindings taken from the activity's input plus the calling workflow's id and the
 * activity's name/attempt, from the activity context (pass `Context.current().info`).
 */
export function activityLogger(
  base: Logger,
  info: { workflowExecution?: { workflowId: string }; activityType: string; attempt: number },
  key: { model: string; version?: number },
): Logger {
  return base.child({
    model: key.model,
    ...(key.version !== undefined ? { version: key.version } : {}),
    workflowId: info.workflowExecution?.workflowId,
    activity: info.activityType,
    attempt: info.attempt,
  });
}
