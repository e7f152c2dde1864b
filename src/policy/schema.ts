/**
 * The zod schema of one model's policy as written in the YAML file (after `models.<name>` is merged over
 * `defaults`). Every object is strict so a misspelt key is an error rather than a silently ignored setting,
 * and defaults live here, in one place, so docs/policy.md and the resolved ModelPolicy agree.
 */
import { z } from 'zod';
import { canarySchema } from './canary-schema.js';
import { parseDuration } from './duration.js';
import type { Comparator, MetricThreshold } from './types.js';

/** A strict object whose unknown-key message lists the keys that are allowed there (typos are the usual cause). */
function strictObject<S extends z.ZodRawShape>(shape: S) {
  return z.object(shape).strict(`unknown key (allowed: ${Object.keys(shape).join(', ')})`);
}

const text = z.string().trim().min(1, 'must not be empty');

const COMPARATORS: readonly Comparator[] = ['>=', '>', '<=', '<', '=='];
// Metric names as MLflow allows them, minus spaces (a space separates the name from the operator).
const THRESHOLD = /^\s*([A-Za-z0-9_][A-Za-z0-9_.\-/]*)\s*(>=|<=|==|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$/;

/** `"accuracy >= 0.9"` → `{ metric, op, value }`; throws Error with a one-line reason. */
export function parseThreshold(s: string): MetricThreshold {
  const m = THRESHOLD.exec(s);
  if (!m) {
    throw new Error(`${JSON.stringify(s)} is not "<metric> <op> <number>" with op one of ${COMPARATORS.join(' ')}`);
  }
  return { metric: m[1], op: m[2] as Comparator, value: Number(m[3]) };
}

const threshold = z
  .string({ invalid_type_error: 'expected a string such as "accuracy >= 0.9"' })
  .transform((s, ctx) => {
    try {
      return parseThreshold(s);
    } catch (err) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message });
      return z.NEVER;
    }
  });

/** A duration string (`72h`) → milliseconds, strictly positive. */
const duration = z
  .string({ invalid_type_error: 'expected a duration string such as 30s, 15m, 72h or 7d' })
  .transform((s, ctx) => {
    try {
      const ms = parseDuration(s);
      if (ms > 0) return ms;
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `duration ${JSON.stringify(s)} must be greater than zero` });
    } catch (err) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message });
    }
    return z.NEVER;
  });

/**
 * Longest a manual merge/revert wait may be set to: it runs inside one workflow run (under the lock), so at the
 * 15-minute back-off (~11 events a look) it must fit the history budget: 3d ≈ 290 looks ≈ 3,200 events.
 */
export const MAX_MANUAL_WAIT_MS = 3 * 24 * 60 * 60 * 1000;
/** The lock wait continues as new within the budget, so only its length for a person matters. */
export const MAX_LOCK_WAIT_MS = 7 * 24 * 60 * 60 * 1000;
const wait = (fallback: string, maxMs: number, max: string) =>
  duration.default(fallback).refine((ms) => ms <= maxMs, `must be at most ${max} (a longer wait is a person's decision: promote again)`);

const evaluation = strictObject({
  thresholds: z.array(threshold).default([]),
  requiredTags: z.array(text).default([]),
  noRegression: z
    .array(
      strictObject({
        metric: text,
        direction: z.enum(['higher_is_better', 'lower_is_better']),
        tolerance: z.number().finite().min(0, 'must be 0 or more').default(0),
      }),
    )
    .default([]),
}).default({});

const approver = text.refine(
  (a) => a === '*' || /^(group:)?[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/.test(a),
  'must be an identity, group:<name>, or "*"',
);

const approval = strictObject({
  approvers: z.array(approver),
  /** true/false, or `{ unknownRegistrant: deny | allow }` (four-eyes on, with what to do when nobody knows the registrant). */
  fourEyes: z
    .union([z.boolean(), strictObject({ unknownRegistrant: z.enum(['deny', 'allow']).default('deny') })], {
      errorMap: () => ({ message: 'expected true, false or { unknownRegistrant: deny | allow }' }),
    })
    .default(true),
  requireVerifiedIdentity: z.boolean().default(true),
  quorum: z.number().int('must be a whole number').min(1, 'must be at least 1').default(1),
  expiresAfter: duration.default('72h'),
  /** A failed re-check under the lock: `drop` the approvals (a new round) or `keep` them and re-check later. */
  onRecheckFailure: z.enum(['keep', 'drop']).default('drop'),
}).superRefine((a, ctx) => {
  // `*` and groups let people not listed here approve, so no list length bounds the quorum.
  if (a.approvers.includes('*') || a.approvers.some((x) => x.startsWith('group:'))) return;
  const distinct = new Set(a.approvers).size;
  if (a.quorum > distinct) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: ['quorum'],
      message: `quorum ${a.quorum} exceeds the ${distinct} distinct approver(s) listed, so no version could ever be approved`,
    });
  }
});

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const ISVC_NAME = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

const gitops = strictObject({
  provider: z.enum(['git', 'github']),
  repo: text,
  baseBranch: text.default('main'),
  manifestPath: text.refine(
    (p) => !p.startsWith('/') && !p.split('/').includes('..'),
    'must be a path inside the repository (relative, no "..")',
  ),
  namespace: z.string().max(63).regex(DNS_LABEL, 'must be a Kubernetes namespace name (lowercase letters, digits, "-")'),
  inferenceService: z
    .string()
    .max(63)
    .regex(ISVC_NAME, 'must be an InferenceService name (lowercase letters, digits, "-", starting with a letter)'),
  mergeMethod: z.enum(['merge', 'squash', 'rebase']).default('merge'),
  storageUriPrefixMap: z.array(strictObject({ from: text, to: text })).default([]),
  reapproveOnChange: z.boolean().default(true),
  onRetire: z.enum(['previous', 'remove']).default('previous'),
  /** How long an approved PR modelgate cannot merge waits for a person to merge it (then manual_merge_timed_out). */
  manualMergeTimeout: wait('24h', MAX_MANUAL_WAIT_MS, '3d'),
  /** How long a revert PR (rollback: approval) waits for a person to merge it (then manual_revert_timed_out). */
  manualRevertTimeout: wait('24h', MAX_MANUAL_WAIT_MS, '3d'),
}).superRefine((g, ctx) => {
  if (g.provider === 'github' && !/^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+$/.test(g.repo)) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['repo'], message: 'must be "owner/name" when provider is github' });
  }
});

const kserve = strictObject({
  argocdApplication: strictObject({ namespace: text, name: text }).optional(),
  deploymentMode: z.enum(['Serverless', 'RawDeployment']).default('Serverless'),
  rolloutDeadline: duration.default('15m'),
  smokeUrl: z
    .string()
    .url('must be an http(s) URL')
    .refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL')
    .optional(),
  rollback: z.enum(['auto', 'approval']).default('auto'),
});

const deployment = strictObject({
  mode: z.enum(['registry', 'gitops']).default('registry'),
  /** How long one promotion may hold the model's Production lock. */
  lockLease: duration.optional(),
  /** How long an approved version waits for the model's Production lock (then lock_wait_timed_out). */
  lockWait: wait('24h', MAX_LOCK_WAIT_MS, '7d'),
  gitops: gitops.optional(),
  kserve: kserve.optional(),
  /** Progressive rollout (canary-schema.ts). */
  canary: canarySchema.optional(),
})
  .superRefine((d, ctx) => {
    if (d.mode === 'gitops' && !d.gitops) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['gitops'], message: 'required when mode is gitops' });
    }
    if (d.canary && d.mode !== 'gitops') {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['canary'],
        message: 'a canary needs mode gitops (it moves traffic by committing canaryTrafficPercent to the InferenceService)',
      });
    }
    // Each step waits for KServe to report the split; without the kserve section nothing watches the cluster.
    if (d.canary && d.mode === 'gitops' && !d.kserve) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['canary'],
        message: 'a canary needs deployment.kserve (each step waits until the InferenceService reports the traffic split)',
      });
    }
    // KServe ignores canaryTrafficPercent in RawDeployment mode: the "canary" would take all traffic at once.
    if (d.canary && d.kserve?.deploymentMode === 'RawDeployment') {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['canary'],
        message: 'a canary needs kserve.deploymentMode Serverless: RawDeployment InferenceServices ignore canaryTrafficPercent',
      });
    }
  })
  .default({});

const notify = strictObject({ slackChannel: text.optional() }).default({});

/** How a rollback run (`modelgate rollback`) is approved; absent = like any promotion, evaluation skipped. */
const rollback = strictObject({
  quorum: z.number().int('must be a whole number').min(1, 'must be at least 1').default(1),
  fourEyes: z.boolean().default(true),
  skipEvaluation: z.boolean().default(true),
}).optional();

/** One model's policy, `models.<name>` already merged over `defaults`. */
export const policySchema = strictObject({ evaluation, approval, deployment, notify, rollback });

export type ParsedPolicy = z.output<typeof policySchema>;

const mapOf = (what: string) =>
  z.record(z.unknown(), { invalid_type_error: `expected a mapping of ${what}` });

/** The file's top level; each policy inside is validated by policySchema after merging. */
export const fileSchema = strictObject({
  defaults: mapOf('policy keys (evaluation, approval, deployment, notify, rollback)').optional(),
  models: z
    .record(
      z.union([mapOf('policy keys (evaluation, approval, deployment, notify, rollback)'), z.null()], {
        errorMap: () => ({ message: 'expected a mapping of policy keys, or nothing to use the defaults' }),
      }),
      { invalid_type_error: 'expected a mapping of model name → policy' },
    )
    .nullable()
    .optional(),
}).refine((f) => f.defaults !== undefined || (f.models != null && Object.keys(f.models).length > 0), {
  message: 'a policy file needs `defaults:` and/or at least one entry under `models:`',
});
