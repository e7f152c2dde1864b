/**
 * Structured logs (pino). Secrets are redacted by key wherever they appear in a logged object, so a config
 * or request dumped by mistake still never prints a token.
 */
import { pino, type Logger } from 'pino';
import { lifecycleWorkflowId } from '../workflows/definitions.js';

export type { Logger };

export const REDACT_PATHS = [
  '*.token', '*.password', '*.secret', '*.apiKey', '*.privateKey', '*.authorization', '*.Authorization',
  'headers.authorization', 'req.headers.authorization', 'req.headers["x-slack-signature"]',
  'req.headers["x-hub-signature-256"]', 'req.headers["x-mlflow-signature"]',
];

export function createLogger(level: string = 'info', bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { service: 'modelgate', ...bindings }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } });
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
