/**
 * Lifecycle activities over the MLflow registry. Each one reads the version first and writes only what
 * differs, so a retry after a crash (activities run at least once) never transitions or tags twice; every
 * timestamp comes from the workflow, so a retry writes the same values.
 */
import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import type { MlflowRegistry, MlflowStage, ModelVersion } from '../mlflow/types.js';
import { ALIAS, MODEL_TAG, TAG } from '../mlflow/tags.js';
import type { EvaluationPolicy, ModelPolicy } from '../policy/types.js';
import { evaluate } from '../policy/evaluate.js';
import { FailureTypes, type EvaluationResult, type Outcome, type VersionFacts } from '../workflows/definitions.js';
import { toActivityError } from '../mlflow/errors.js';
import type { IdentityRef } from '../identity/types.js';
import { msBetween, observeApprovalWait, observeStageDuration, recordOutcome } from '../observability/metrics.js';

export interface PolicySource {
  policyFor(model: string): ModelPolicy;
}

export interface RegistryDeps {
  mlflow: MlflowRegistry;
  policies: PolicySource;
  /** Poll interval while a version is PENDING_REGISTRATION. */
  readyPollMs?: number;
  /** Maps MLflow's server-side user to a modelgate identity (the registrant under four-eyes). */
  identities?: { byMlflowUser(user: string): IdentityRef | undefined };
}

interface Key {
  model: string;
  version: number;
}

/** The Production lock grant an activity acts under. */
export interface Fence {
  token: number;
  /** Epoch ms the grant's lease ends for its holder: an attempt that runs later (a stalled worker) refuses. */
  until?: number;
}

export interface StageChange extends Key {
  workflowId: string;
  at: string;
  tags?: Record<string, string>;
}

/** MLflow client errors as activity failures (typed, retryable or not); counted by the worker's countFailures. */
async function guarded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toActivityError(err);
  }
}

export function createRegistryActivities(deps: RegistryDeps) {
  const { mlflow } = deps;

  async function setTags(v: ModelVersion, tags: Record<string, string>): Promise<void> {
    for (const [key, value] of Object.entries(tags)) {
      if (v.tags[key] !== value) await mlflow.setVersionTag(v.name, v.version, key, value);
    }
  }

  async function moveStage(v: ModelVersion, stage: MlflowStage): Promise<void> {
    if (v.current_stage !== stage) await mlflow.transitionStage(v.name, v.version, stage);
  }

  async function pointAlias(model: string, alias: string, version: number, v: ModelVersion): Promise<void> {
    if (!v.aliases.includes(alias)) await mlflow.setAlias(model, alias, version);
  }

  async function dropAliasIfMine(v: ModelVersion, alias: string): Promise<void> {
    if (v.aliases.includes(alias)) await mlflow.deleteAlias(v.name, alias);
  }

  /**
   * Histograms from the times modelgate already wrote on the version (no extra MLflow call). Measured from the
   * version as read, observed by the caller once the stage has moved: an attempt that fails before the move
   * observes nothing, and its retry finds the old stage and observes once; after the move a retry finds the new
   * stage and observes nothing.
   */
  function leavingStage(v: ModelVersion, at: string): () => void {
    const since = v.current_stage === 'Production' ? v.tags[TAG.promotedAt] : v.current_stage === 'Staging' ? v.tags[TAG.stagedAt] : undefined;
    const entered = v.current_stage === 'None' ? new Date(v.creation_timestamp).toISOString() : since;
    const d = msBetween(entered, at);
    const stage = v.current_stage;
    return () => {
      if (d !== undefined) observeStageDuration(stage, d);
    };
  }

  const noop = (): void => undefined;

  /** Refuses a Production change under a grant that is no longer the newest (see workflows/lock.ts). */
  async function checkFence(model: string, fence: Fence | undefined): Promise<void> {
    if (!fence) return;
    const expired = () => fence.until !== undefined && Date.now() >= fence.until;
    if (expired()) {
      throw ApplicationFailure.create({
        type: FailureTypes.StaleFence,
        nonRetryable: true,
        message: `the lease of Production lock grant ${fence.token} of ${model} ran out before this attempt ran: not changing Production`,
      });
    }
    const held = (await mlflow.getRegisteredModel(model)).tags[MODEL_TAG.lockToken];
    if (held !== String(fence.token) || expired()) {
      throw ApplicationFailure.create({
        type: FailureTypes.StaleFence,
        nonRetryable: true,
        message: `the Production lock of ${model} was granted again (token ${held ?? 'none'}, this grant ${fence.token}): not changing Production`,
      });
    }
  }

  return {
    async resolvePolicy({ model }: { model: string }): Promise<ModelPolicy> {
      try {
        return deps.policies.policyFor(model);
      } catch (err) {
        throw ApplicationFailure.create({ type: FailureTypes.NoPolicy, nonRetryable: true, message: (err as Error).message });
      }
    },

    /** Heartbeats while MLflow finishes registering the version. */
    async waitForVersionReady({ model, version }: Key): Promise<VersionFacts> {
      const poll = deps.readyPollMs ?? 1000;
      for (;;) {
        const v = await guarded(() => mlflow.getModelVersion(model, version)).catch((err: unknown) => {
          if (err instanceof ApplicationFailure && err.type === 'MlflowNotFound') {
            throw ApplicationFailure.create({
              type: FailureTypes.VersionNotFound,
              nonRetryable: true,
              message: `MLflow has no version ${version} of model ${model}`,
            });
          }
          throw err;
        });
        if (v.status === 'FAILED_REGISTRATION') {
          throw ApplicationFailure.create({
            type: FailureTypes.RegistrationFailed,
            nonRetryable: true,
            message: `${model} version ${version} failed registration: ${v.status_message || 'no message from MLflow'}`,
          });
        }
        if (v.status === 'READY') {
          // Only MLflow's server-side user counts (set when MLflow runs with auth); the run's `mlflow.user` tag is
          // written by the client and proves nothing, so it never decides four-eyes.
          const registeredBy = v.user_id || undefined;
          const registrant = registeredBy ? deps.identities?.byMlflowUser(registeredBy)?.identity : undefined;
          return {
            model,
            version,
            runId: v.run_id || undefined,
            registeredBy,
            ...(registrant ? { registrant } : {}),
            ...(v.tags[TAG.promotedAt] ? { promotedBefore: v.tags[TAG.promotedAt] } : {}),
            source: v.source,
            status: v.status,
            createdAt: new Date(v.creation_timestamp).toISOString(),
          };
        }
        Context.current().heartbeat({ status: v.status });
        await Context.current().sleep(poll);
      }
    },

    /** Reads the candidate's run and the current Production version's run, then applies the pure gate. */
    async evaluateVersion({
      model, version, runId, policy, baselineVersion,
    }: Key & { runId?: string; policy: EvaluationPolicy; baselineVersion?: number | null }): Promise<EvaluationResult> {
      return guarded(async () => {
        const candidate = runId ? await mlflow.getRun(runId) : undefined;
        // The workflow names the baseline (what served under the lock), so the judgement is in its history.
        const current =
          baselineVersion === undefined ? await mlflow.getVersionByAlias(model, ALIAS.production)
          : baselineVersion === null ? null
          : await mlflow.getModelVersion(model, baselineVersion);
        let baseline: { version: number; metrics: Record<string, number> } | undefined;
        if (current && current.version !== version && current.run_id) {
          const run = await mlflow.getRun(current.run_id);
          baseline = { version: current.version, metrics: run.metrics };
        }
        return evaluate(policy, { metrics: candidate?.metrics ?? {}, tags: candidate?.tags ?? {} }, baseline);
      });
    },

    async enterStaging({ model, version, workflowId, at, tags }: StageChange): Promise<void> {
      await guarded(async () => {
        const v = await mlflow.getModelVersion(model, version);
        const observe = v.current_stage !== 'Staging' ? leavingStage(v, at) : noop;
        await moveStage(v, 'Staging');
        observe();
        await pointAlias(model, ALIAS.staging, version, v);
        await setTags(v, { [TAG.stage]: 'Staging', [TAG.workflowId]: workflowId, [TAG.stagedAt]: at, ...tags });
      });
    },

    /** Ends a lifecycle that never reached Production: tags the reason; the stage stays where it is. */
    async recordOutcome({ model, version, workflowId, at, outcome, reasons, tags }: StageChange & { outcome: Outcome; reasons: string[] }): Promise<void> {
      await guarded(async () => {
        const v = await mlflow.getModelVersion(model, version);
        const waited = (outcome === 'rejected' || outcome === 'expired') && v.tags[TAG.outcome] !== outcome ? msBetween(v.tags[TAG.stagedAt], at) : undefined;
        await setTags(v, {
          [TAG.workflowId]: workflowId,
          [TAG.outcome]: outcome,
          [TAG.reasons]: reasons.join('; ').slice(0, 4000) || outcome,
          [TAG.stage]: v.current_stage,
          [`modelgate.${outcome}_at`]: at,
          ...tags,
        });
        // After the outcome tag is written, so a retry (which finds it) does not count the wait again.
        if (waited !== undefined) observeApprovalWait(waited, outcome as 'rejected' | 'expired');
        // A version that will never be promoted must not keep the staging alias.
        if (outcome !== 'expired') await dropAliasIfMine(v, ALIAS.staging);
      });
      recordOutcome(outcome);
    },

    /**
     * Makes this version Production: stage, alias, tags. Called only while holding the model's lock. The
     * previous Production version is remembered in a tag *before* the alias moves, so a retry after a crash
     * between the two still knows which version it replaced.
     */
    async enterProduction({
      model, version, workflowId, at, tags, previousVersion, fence,
    }: StageChange & { previousVersion?: number | null; fence?: Fence }): Promise<{ previousVersion?: number }> {
      return guarded(async () => {
        await checkFence(model, fence);
        let v = await mlflow.getModelVersion(model, version);
        let recorded = v.tags[TAG.previousVersion];
        if (previousVersion !== undefined) {
          // Decided by the workflow under the lock and kept in its history; an existing tag is not trusted.
          recorded = previousVersion === null ? 'none' : String(previousVersion);
          if (v.tags[TAG.previousVersion] !== recorded) await mlflow.setVersionTag(model, version, TAG.previousVersion, recorded);
          v = { ...v, tags: { ...v.tags, [TAG.previousVersion]: recorded } };
        } else if (recorded === undefined) {
          const current = await mlflow.getVersionByAlias(model, ALIAS.production);
          recorded = current && current.version !== version ? String(current.version) : 'none';
          await mlflow.setVersionTag(model, version, TAG.previousVersion, recorded);
          v = { ...v, tags: { ...v.tags, [TAG.previousVersion]: recorded } };
        }
        const moving = v.current_stage !== 'Production';
        const observe = moving ? leavingStage(v, at) : noop;
        const waited = moving ? msBetween(v.tags[TAG.stagedAt], tags?.[TAG.approvedAt]) : undefined;
        await moveStage(v, 'Production');
        observe();
        if (waited !== undefined) observeApprovalWait(waited, 'approved');
        await pointAlias(model, ALIAS.production, version, v);
        await dropAliasIfMine(v, ALIAS.staging);
        await setTags(v, { [TAG.stage]: 'Production', [TAG.workflowId]: workflowId, [TAG.promotedAt]: at, ...tags });
        recordOutcome('promoted');
        return recorded === 'none' ? {} : { previousVersion: Number(recorded) };
      });
    },

    /** Archives a version (superseded or retired). Removes an alias only while it still points at it. */
    async archiveVersion({
      model, version, at, supersededBy, outcome, fence,
    }: Key & { at: string; supersededBy?: number; outcome: Outcome; fence?: Fence }): Promise<void> {
      await guarded(async () => {
        await checkFence(model, fence);
        const v = await mlflow.getModelVersion(model, version);
        const observe = v.current_stage !== 'Archived' ? leavingStage(v, at) : noop;
        await moveStage(v, 'Archived');
        observe();
        await dropAliasIfMine(v, ALIAS.production);
        await dropAliasIfMine(v, ALIAS.staging);
        await setTags(v, {
          [TAG.stage]: 'Archived',
          [TAG.archivedAt]: at,
          [TAG.outcome]: outcome,
          ...(supersededBy !== undefined ? { [TAG.supersededBy]: String(supersededBy) } : {}),
        });
      });
      recordOutcome(outcome);
    },

    /**
     * What serves now: the `production` alias holder, and every version in stage Production (set outside
     * modelgate, too). `serving` is the alias holder, else the newest version in stage Production.
     */
    async currentProduction({ model }: { model: string }): Promise<{ serving?: number; aliasHolder?: number; stageHolders: number[] }> {
      return guarded(async () => {
        const m = await mlflow.getRegisteredModel(model);
        const aliasHolder = m.aliases.find((a) => a.alias === ALIAS.production)?.version;
        const inStage = await mlflow.getLatestVersions(model, ['Production']).catch(() => [] as ModelVersion[]);
        const stageHolders = inStage.map((v) => v.version).sort((a, b) => a - b);
        const serving = aliasHolder ?? stageHolders[stageHolders.length - 1];
        return { ...(serving !== undefined ? { serving } : {}), ...(aliasHolder !== undefined ? { aliasHolder } : {}), stageHolders };
      });
    },

    /** Which version holds the `production` alias now (a `superseded` signal is believed only if this agrees). */
    async productionHolder({ model }: { model: string }): Promise<number | undefined> {
      return guarded(async () => (await mlflow.getVersionByAlias(model, ALIAS.production))?.version);
    },

    /** Tags only (deployment facts, flags). */
    async tagVersion({ model, version, tags }: Key & { tags: Record<string, string> }): Promise<void> {
      await guarded(async () => setTags(await mlflow.getModelVersion(model, version), tags));
    },
  };
}

export type RegistryActivities = ReturnType<typeof createRegistryActivities>;
