/**
 * Whether the registry serves model-version stages, and how a stage-less registry says it does not.
 *
 * MLflow deprecated stages in favour of aliases; Unity Catalog never had them. A registry without stages
 * answers transition-stage with a refusal rather than a failure of the request: Databricks-style
 * `FEATURE_DISABLED` / `ENDPOINT_NOT_FOUND` / `NOT_IMPLEMENTED` error codes, a message saying stages are
 * "not supported" (what MLflow's Unity Catalog client says for every stage API), or a route that is simply not
 * there (404/405/501 without an MLflow error body). A missing *version* (RESOURCE_DOES_NOT_EXIST), a permission
 * error or a 5xx is not such a refusal.
 */
import { ApplicationFailure } from '@temporalio/common';
import { MlflowError } from './errors.js';
import { TAG } from './tags.js';
import type { MlflowStage, ModelVersion } from './types.js';
import type { StagesMode } from '../config/registry.js';

export type { StagesMode } from '../config/registry.js';

const TRANSITION = 'model-versions/transition-stage';
const REFUSAL_CODES = new Set(['FEATURE_DISABLED', 'ENDPOINT_NOT_FOUND', 'NOT_IMPLEMENTED']);

export function isStagelessRefusal(err: unknown): boolean {
  if (!(err instanceof MlflowError) || err.endpoint !== TRANSITION) return false;
  if (REFUSAL_CODES.has(err.errorCode)) return true;
  if (err.errorCode === 'HTTP_ERROR' && [404, 405, 501].includes(err.status)) return true;
  return (
    [400, 403, 501].includes(err.status) &&
    /stage/i.test(err.detail) &&
    /not supported|unsupported|disabled|no longer|removed/i.test(err.detail)
  );
}

export interface StageSupport {
  readonly mode: StagesMode;
  /** Whether to call transition-stage (auto: until the first stage-less refusal). */
  served(): boolean;
  /**
   * For a failed transition-stage: true when it was a stage-less refusal and the caller should go on without
   * stages (auto, now off for the rest of the process). In `on` mode such a refusal is a permanent failure
   * naming the setting; any other error is the caller's to throw.
   */
  refused(err: unknown): boolean;
}

/** One per worker process and MLflow server: auto's finding is remembered, not rediscovered per activity. */
export function createStageSupport(mode: StagesMode): StageSupport {
  let served = mode !== 'off';
  return {
    mode,
    served: () => served,
    refused(err) {
      if (!isStagelessRefusal(err)) return false;
      if (mode === 'on') {
        throw ApplicationFailure.create({
          type: 'MlflowStagesNotServed',
          nonRetryable: true,
          message: `MLflow refuses stage transitions (${(err as MlflowError).message}); set MODELGATE_REGISTRY_STAGES=off (or auto) for a registry without stages`,
        });
      }
      served = false;
      return true;
    },
  };
}

const STAGES: readonly string[] = ['None', 'Staging', 'Production', 'Archived'];

/**
 * The stage modelgate recorded for a version: the `modelgate.stage` tag when there is one (always written
 * without stages, and kept in step where it exists), else MLflow's stage.
 */
export function stageOf(v: Pick<ModelVersion, 'tags' | 'current_stage'>): MlflowStage {
  const tagged = v.tags[TAG.stage];
  return tagged !== undefined && STAGES.includes(tagged) ? (tagged as MlflowStage) : v.current_stage;
}
