/**
 * The zod schema of `deployment.canary` (docs/policy.md): traffic steps, per-step pauses, analysis metrics in
 * the Argo Rollouts style, an optional final soak. Everything a measurement will need is checked here, at load,
 * so a typo in a condition or a placeholder stops the worker at start with file:line rather than failing the
 * first canary of the night: conditions are parsed, placeholders are known, limits can be reached.
 */
import { z } from 'zod';
import { parseCondition } from '../canary/condition.js';
import { unknownPlaceholders } from '../canary/query.js';
import { parseDuration } from './duration.js';

function strictObject<S extends z.ZodRawShape>(shape: S) {
  return z.object(shape).strict(`unknown key (allowed: ${Object.keys(shape).join(', ')})`);
}

/** A duration string → ms, at least `minMs` (0 allowed when minMs is 0). */
function durationAtLeast(minMs: number, what: string) {
  return z
    .string({ invalid_type_error: 'expected a duration string such as 30s, 5m or 1h' })
    .transform((s, ctx) => {
      try {
        const ms = parseDuration(s);
        if (ms >= minMs) return ms;
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${what} ${JSON.stringify(s)} must be at least ${minMs === 0 ? '0s' : `${minMs / 1000}s`}` });
      } catch (err) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message });
      }
      return z.NEVER;
    });
}

const condition = z
  .string({ invalid_type_error: 'expected a condition string such as "result < 0.05"' })
  .superRefine((s, ctx) => {
    try {
      parseCondition(s);
    } catch (err) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `invalid condition ${JSON.stringify(s.slice(0, 80))}: ${(err as Error).message}` });
    }
  });

const percent = z
  .number({ invalid_type_error: 'expected a percent of traffic, 1 to 100' })
  .int('must be a whole percent')
  .min(1, 'must be at least 1 (percent of traffic)')
  .max(100, 'must be at most 100 (percent of traffic)');

/** `10` or `{ percent: 10, pause: 5m }`. */
const step = z.union(
  [
    percent.transform((p) => ({ percent: p, pauseMs: 0 })),
    strictObject({ percent, pause: durationAtLeast(0, 'pause').default('0s') }).transform((s) => ({ percent: s.percent, pauseMs: s.pause })),
  ],
  { errorMap: () => ({ message: 'expected a percent (1–100) or { percent, pause }' }) },
);

const METRIC_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const limit = z.number({ invalid_type_error: 'expected a whole number, 0 or more' }).int('must be a whole number').min(0, 'must be 0 or more');

const metric = strictObject({
  name: z.string().regex(METRIC_NAME, 'must be letters, digits, ".", "_" or "-" (up to 63), starting with a letter or digit'),
  query: z
    .string({ invalid_type_error: 'expected a PromQL query string' })
    .trim()
    .min(1, 'must not be empty')
    .max(4000, 'must be at most 4000 characters')
    .superRefine((q, ctx) => {
      const bad = unknownPlaceholders(q);
      if (bad.length) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          message: `unknown placeholder ${bad.map((b) => JSON.stringify(b)).join(', ')} (allowed: {{version}}, {{revision}})`,
        });
      }
    }),
  successCondition: condition,
  failureCondition: condition.optional(),
  interval: durationAtLeast(1000, 'interval').default('30s'),
  count: z.number({ invalid_type_error: 'expected a whole number, 1 or more' }).int('must be a whole number').min(1, 'must be at least 1').default(5),
  failureLimit: limit.default(0),
  inconclusiveLimit: limit.default(0),
  consecutiveErrorLimit: limit.default(4),
}).superRefine((m, ctx) => {
  // A limit that `count` measurements can never exceed means the metric can never fail (or pause): refuse it.
  if (m.failureLimit >= m.count) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: ['failureLimit'],
      message: `failureLimit ${m.failureLimit} must be less than count ${m.count}, or the metric could never fail`,
    });
  }
  if (m.inconclusiveLimit >= m.count) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: ['inconclusiveLimit'],
      message: `inconclusiveLimit ${m.inconclusiveLimit} must be less than count ${m.count}, or a metric without data could pass`,
    });
  }
});

export const canarySchema = strictObject({
  steps: z.array(step, { invalid_type_error: 'expected a list of percents such as [10, 50, 100]' }).min(1, 'needs at least one step'),
  metrics: z.array(metric, { invalid_type_error: 'expected a list of analysis metrics' }).min(1, 'needs at least one analysis metric'),
  finalSoak: durationAtLeast(1000, 'finalSoak').optional(),
  commit: z.enum(['direct', 'pull-request']).optional(),
}).superRefine((c, ctx) => {
  // zod runs this refinement even when `min(1)` already failed; the issue for that is reported.
  if (c.steps.length === 0) return;
  for (let k = 1; k < c.steps.length; k++) {
    if (c.steps[k].percent <= c.steps[k - 1].percent) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['steps', k],
        message: `steps must increase: ${c.steps[k].percent} after ${c.steps[k - 1].percent}`,
      });
      return;
    }
  }
  const last = c.steps[c.steps.length - 1];
  if (last.percent !== 100) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: ['steps', c.steps.length - 1],
      message: `the last step must be 100 (got ${last.percent}): a canary ends with the version serving all traffic`,
    });
  }
  const seen = new Set<string>();
  c.metrics.forEach((m, k) => {
    if (seen.has(m.name)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['metrics', k, 'name'], message: `duplicate metric name ${JSON.stringify(m.name)}` });
    }
    seen.add(m.name);
  });
});

export type ParsedCanary = z.output<typeof canarySchema>;
