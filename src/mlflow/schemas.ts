/**
 * zod schemas for the MLflow REST responses modelgate reads, each transforming MLflow's wire shape into the
 * plain types of types.ts: versions arrive as strings and become numbers, key/value lists become records,
 * and empty optional strings (proto2 sends "" for unset text) become undefined.
 */
import { z } from 'zod';
import type { ModelVersion, RegisteredModel, Run } from './types.js';

/** MLflow serialises int64 as a JSON number today; accept a decimal string too (protobuf JSON allows it). */
const int64 = z.union([z.number().int(), z.string().regex(/^-?\d+$/, 'expected an integer').transform(Number)]);

/** Model versions are positive integers sent as strings ("3"). */
const versionNumber = z.union([
  z.number().int().positive(),
  z.string().regex(/^[1-9]\d*$/, 'expected a positive integer version').transform(Number),
]);

/** "" means unset in MLflow's proto2 messages. */
const optText = z
  .string()
  .optional()
  .transform((s) => (s === undefined || s === '' ? undefined : s));

const keyValues = z
  .array(z.object({ key: z.string(), value: z.string().optional().default('') }))
  .optional()
  .default([])
  .transform((kvs) => Object.fromEntries(kvs.map((kv) => [kv.key, kv.value])) as Record<string, string>);

/** protobuf JSON writes non-finite doubles as strings. */
const metricValue = z.union([
  z.number(),
  z.enum(['NaN', 'Infinity', '-Infinity']).transform((s) => Number(s)),
]);

export const stageSchema = z.enum(['None', 'Staging', 'Production', 'Archived']);
export const versionStatusSchema = z.enum(['PENDING_REGISTRATION', 'READY', 'FAILED_REGISTRATION']);

export const modelVersionSchema = z
  .object({
    name: z.string(),
    version: versionNumber,
    creation_timestamp: int64,
    last_updated_timestamp: int64.optional(),
    user_id: optText,
    current_stage: stageSchema,
    description: optText,
    source: z.string(),
    run_id: optText,
    status: versionStatusSchema,
    status_message: optText,
    tags: keyValues,
    aliases: z.array(z.string()).optional().default([]),
  })
  .transform(
    (v): ModelVersion => ({
      name: v.name,
      version: v.version,
      creation_timestamp: v.creation_timestamp,
      last_updated_timestamp: v.last_updated_timestamp,
      user_id: v.user_id,
      current_stage: v.current_stage,
      description: v.description,
      source: v.source,
      run_id: v.run_id,
      status: v.status,
      status_message: v.status_message,
      tags: v.tags,
      aliases: v.aliases,
    }),
  );

export const registeredModelSchema = z
  .object({
    name: z.string(),
    creation_timestamp: int64,
    last_updated_timestamp: int64.optional(),
    description: optText,
    latest_versions: z.array(modelVersionSchema).optional().default([]),
    tags: keyValues,
    aliases: z
      .array(z.object({ alias: z.string(), version: versionNumber }))
      .optional()
      .default([]),
  })
  .transform(
    (m): RegisteredModel => ({
      name: m.name,
      creation_timestamp: m.creation_timestamp,
      last_updated_timestamp: m.last_updated_timestamp,
      description: m.description,
      latest_versions: m.latest_versions,
      tags: m.tags,
      aliases: m.aliases,
    }),
  );

export const runSchema = z
  .object({
    info: z.object({
      run_id: z.string().optional(),
      /** Older servers send only the deprecated run_uuid. */
      run_uuid: z.string().optional(),
      experiment_id: z.string(),
      run_name: optText,
      user_id: optText,
      status: z.string(),
      start_time: int64.optional(),
      end_time: int64.optional(),
      artifact_uri: optText,
    }),
    data: z
      .object({
        metrics: z.array(z.object({ key: z.string(), value: metricValue })).optional().default([]),
        params: keyValues,
        tags: keyValues,
      })
      .optional()
      .default({}),
  })
  .superRefine((r, ctx) => {
    if (!r.info.run_id && !r.info.run_uuid) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['info', 'run_id'], message: 'Required' });
    }
  })
  .transform(
    (r): Run => ({
      run_id: (r.info.run_id || r.info.run_uuid)!,
      experiment_id: r.info.experiment_id,
      run_name: r.info.run_name,
      user_id: r.info.user_id,
      status: r.info.status,
      start_time: r.info.start_time,
      end_time: r.info.end_time,
      artifact_uri: r.info.artifact_uri,
      metrics: Object.fromEntries(r.data.metrics.map((m) => [m.key, m.value])),
      params: r.data.params,
      tags: r.data.tags,
    }),
  );

// ---- one schema per endpoint response (keys are the endpoint paths under /api/2.0/mlflow) ----

export const responses = {
  'registered-models/get': z.object({ registered_model: registeredModelSchema }),
  'registered-models/create': z.object({ registered_model: registeredModelSchema }),
  'registered-models/get-latest-versions': z.object({ model_versions: z.array(modelVersionSchema).optional().default([]) }),
  'registered-models/alias:get': z.object({ model_version: modelVersionSchema }),
  'model-versions/get': z.object({ model_version: modelVersionSchema }),
  'model-versions/create': z.object({ model_version: modelVersionSchema }),
  'model-versions/transition-stage': z.object({ model_version: modelVersionSchema }),
  'model-versions/search': z.object({
    model_versions: z.array(modelVersionSchema).optional().default([]),
    next_page_token: optText,
  }),
  'model-versions/get-download-uri': z.object({ artifact_uri: z.string().min(1) }),
  'runs/get': z.object({ run: runSchema }),
  'runs/create': z.object({ run: runSchema }),
  'experiments/get-by-name': z.object({
    experiment: z.object({ experiment_id: z.string().min(1), name: z.string(), lifecycle_stage: z.string().optional() }),
  }),
  'experiments/create': z.object({ experiment_id: z.string().min(1) }),
  'logged-models:create': z.object({
    model: z.object({
      info: z.object({ model_id: z.string().min(1), experiment_id: z.string(), artifact_uri: z.string().min(1) }),
    }),
  }),
  /** Endpoints whose answer carries nothing: any JSON object. */
  empty: z.object({}).passthrough(),
} as const;

export type ResponseSchemas = typeof responses;

/** "model_version.version: expected a positive integer version" — the first issue, as one line. */
export function describeZodIssue(err: z.ZodError): { field: string; problem: string } {
  const issue = err.issues[0];
  if (!issue) return { field: '(root)', problem: 'invalid' };
  return { field: issue.path.length ? issue.path.join('.') : '(root)', problem: issue.message };
}
