/**
 * Lifecycle activities over the MLflow registry. Exactly once, with as few calls as that allows: a retry (an
 * attempt after one that may have written before it died) reads the version first and writes only what
 * differs; a first attempt has nothing of its own to find, so it writes directly — with stages, its
 * transition-stage answers with the version (tags, aliases) and serves as the read. Every timestamp comes
 * from the workflow, so a retry writes the same values.
 *
 * The stage is recorded once: MLflow's stage while the registry serves stages, else the `modelgate.stage` tag
 * (a tag that exists is kept in step either way, so `stageOf` never reads a stale one).
 */
import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import type { MlflowRegistry, MlflowStage, ModelVersion, RegisteredModel } from '../mlflow/types.js';
import { ALIAS, TAG } from '../mlflow/tags.js';
import { createStageSupport, stageOf, type StageSupport, type StagesMode } from '../mlflow/stages.js';
import { aliasHolder, readProductionHolders, type ProductionHolders } from '../mlflow/production.js';
import type { EvaluationPolicy, ModelPolicy } from '../policy/types.js';
import { evaluate, type EvaluationBaseline } from '../policy/evaluate.js';
import { FailureTypes, type EvaluationResult, type Outcome, type VersionFacts } from '../workflows/definitions.js';
import { toActivityError } from '../mlflow/errors.js';
import type { IdentityRef } from '../identity/types.js';
import { msBetween, observeApprovalWait, observeStageDuration, recordOutcome } from '../observability/metrics.js';
import { checkFence, checkLease, type Fence } from './fence.js';

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
  /** MODELGATE_REGISTRY_STAGES, or a finding shared with other activity groups; default auto. */
  stages?: StagesMode | StageSupport;
}

interface Key {
  model: string;
  version: number;
}

export interface StageChange extends Key {
  workflowId: string;
  at: string;
  tags?: Record<string, string>;
}

export interface EnterProductionInput extends StageChange {
  /** The Production lock grant's token: refused (StaleFence) unless the model's modelgate.lock_token is it. */
  fence?: Fence;
  /**
   * The version this one replaces, decided by the workflow (null: none). When given it is recorded as is and
   * the version's existing modelgate.previous_production_version tag is neither read nor trusted.
   */
  previousVersion?: number | null;
}

export interface ArchiveInput extends Key {
  at: string;
  supersededBy?: number;
  outcome: Outcome;
  fence?: Fence;
}

export interface EvaluateInput extends Key {
  runId?: string;
  policy: EvaluationPolicy;
  /** Compare with exactly this version (null: with none) instead of the `production` alias's holder. */
  baselineVersion?: number | null;
}

export type { ProductionHolders } from '../mlflow/production.js';

/** MLflow client errors as activity failures (typed, retryable or not); counted by the worker's countFailures. */
async function guarded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toActivityError(err);
  }
}

/** An earlier attempt of this activity may have written: read before writing. */
function retrying(): boolean {
  return Context.current().info.attempt > 1;
}

/**
 * The version as get-registered-model shows it: `latest_versions` has the newest version of each stage, with
 * its tags but without aliases (those are the model's). Undefined when it is not among them.
 */
function fromModel(rm: RegisteredModel, version: number): ModelVersion | undefined {
  const v = rm.latest_versions.find((x) => x.version === version);
  return v && { ...v, aliases: rm.aliases.filter((a) => a.version === version).map((a) => a.alias) };
}

/**
 * The stage modelgate last moved a version into, by the times it recorded. Used only when a first attempt
 * did not read the version: its transition answers with the version as it is now, its tags as they were.
 */
function lastEntered(v: ModelVersion): MlflowStage {
  const marks: Array<[MlflowStage, string | undefined]> = [
    ['Staging', v.tags[TAG.stagedAt]],
    ['Production', v.tags[TAG.promotedAt]],
    ['Archived', v.tags[TAG.archivedAt]],
  ];
  let best: MlflowStage = 'None';
  let bestAt = -Infinity;
  for (const [stage, at] of marks) {
    const t = at ? Date.parse(at) : NaN;
    if (t > bestAt) {
      best = stage;
      bestAt = t;
    }
  }
  return best;
}

/**
 * Histograms from the times modelgate already wrote on the version (no extra MLflow call), observed once the
 * stage has moved: an attempt that fails before the move observes nothing, and its retry finds the old stage
 * and observes once; after the move a retry finds the new stage and observes nothing.
 */
function observeLeaving(before: MlflowStage, to: MlflowStage, v: ModelVersion, at: string): void {
  if (before === to) return;
  const entered =
    before === 'None' ? new Date(v.creation_timestamp).toISOString() : before === 'Staging' ? v.tags[TAG.stagedAt] : before === 'Production' ? v.tags[TAG.promotedAt] : undefined;
  const d = msBetween(entered, at);
  if (d !== undefined) observeStageDuration(before, d);
}

export function createRegistryActivities(deps: RegistryDeps) {
  const { mlflow } = deps;
  const stages = typeof deps.stages === 'object' ? deps.stages : createStageSupport(deps.stages ?? 'auto');

  async function setTags(v: ModelVersion, tags: Record<string, string>): Promise<void> {
    for (const [key, value] of Object.entries(tags)) {
      if (v.tags[key] !== value) await mlflow.setVersionTag(v.name, v.version, key, value);
    }
  }

  /** Without stages the tag is the stage; with them only an existing tag is kept in step. */
  function stageTag(v: ModelVersion, stage: MlflowStage): Record<string, string> {
    return !stages.served() || v.tags[TAG.stage] !== undefined ? { [TAG.stage]: stage } : {};
  }

  /**
   * Moves the version to `stage`; returns it as it now is (tags and aliases as before this activity's writes)
   * and the stage it was in. `known`: the version as already read (undefined on a first attempt).
   */
  async function moveTo(model: string, version: number, stage: MlflowStage, known?: ModelVersion): Promise<{ v: ModelVersion; before: MlflowStage }> {
    if (stages.served()) {
      if (known?.current_stage === stage) return { v: known, before: stage };
      try {
        const v = await mlflow.transitionStage(model, version, stage);
        return { v, before: known ? known.current_stage : lastEntered(v) };
      } catch (err) {
        // A stage-less registry (auto finds out here, once per process): the stage becomes a tag.
        if (!stages.refused(err)) throw err;
      }
    }
    const v = known ?? (await mlflow.getModelVersion(model, version));
    return { v, before: stageOf(v) };
  }

  async function pointAlias(model: string, alias: string, version: number, v: ModelVersion): Promise<void> {
    if (!v.aliases.includes(alias)) await mlflow.setAlias(model, alias, version);
  }

  async function dropAliasIfMine(v: ModelVersion, alias: string): Promise<void> {
    if (v.aliases.includes(alias)) await mlflow.deleteAlias(v.name, alias);
  }

  /** The baseline's metrics: the version's run (none when it has no run; the gate then has nothing to compare). */
  async function baselineOf(model: string, version: number, v?: ModelVersion): Promise<EvaluationBaseline> {
    const mv = v ?? (await mlflow.getModelVersion(model, version));
    return { version, metrics: mv.run_id ? (await mlflow.getRun(mv.run_id)).metrics : {} };
  }

  return {
    resolvePolicy({ model }: { model: string }): Promise<ModelPolicy> {
      try {
        return Promise.resolve(deps.policies.policyFor(model));
      } catch (err) {
        return Promise.reject(ApplicationFailure.create({ type: FailureTypes.NoPolicy, nonRetryable: true, message: (err as Error).message }));
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

    /**
     * Reads the candidate's run and the baseline's run, then applies the pure gate. The baseline is the version
     * the caller names (`baselineVersion`, null for none: the workflow decides, so it is in history), else the
     * `production` alias's holder. Runs are read afresh on every call: this is also the re-check under the lock.
     */
    async evaluateVersion({ model, version, runId, policy, baselineVersion }: EvaluateInput): Promise<EvaluationResult> {
      return guarded(async () => {
        const candidate = runId ? await mlflow.getRun(runId) : undefined;
        let baseline: EvaluationBaseline | undefined;
        if (baselineVersion !== undefined) {
          if (baselineVersion !== null && baselineVersion !== version) baseline = await baselineOf(model, baselineVersion);
        } else {
          const current = await mlflow.getVersionByAlias(model, ALIAS.production);
          if (current && current.version !== version && current.run_id) baseline = await baselineOf(model, current.version, current);
        }
        return evaluate(policy, { metrics: candidate?.metrics ?? {}, tags: candidate?.tags ?? {} }, baseline);
      });
    },

    /** What serves now, in one get-registered-model (plus a search only while some version is in stage Production). */
    async currentProduction({ model }: { model: string }): Promise<ProductionHolders> {
      return guarded(() => readProductionHolders(mlflow, model, stages.served()));
    },

    async enterStaging({ model, version, workflowId, at, tags }: StageChange): Promise<void> {
      await guarded(async () => {
        const known = retrying() ? await mlflow.getModelVersion(model, version) : undefined;
        const { v, before } = await moveTo(model, version, 'Staging', known);
        observeLeaving(before, 'Staging', v, at);
        await pointAlias(model, ALIAS.staging, version, v);
        await setTags(v, { ...stageTag(v, 'Staging'), [TAG.workflowId]: workflowId, [TAG.stagedAt]: at, ...tags });
      });
    },

    /** Ends a lifecycle that never reached Production: tags the reason; the stage stays where it is. */
    async recordOutcome({ model, version, workflowId, at, outcome, reasons, tags }: StageChange & { outcome: Outcome; reasons: string[] }): Promise<void> {
      await guarded(async () => {
        // Read even on a first attempt: the wait metric, the stage and the staging alias depend on what is there.
        const v = await mlflow.getModelVersion(model, version);
        const waited = (outcome === 'rejected' || outcome === 'expired') && v.tags[TAG.outcome] !== outcome ? msBetween(v.tags[TAG.stagedAt], at) : undefined;
        await setTags(v, {
          [TAG.workflowId]: workflowId,
          [TAG.outcome]: outcome,
          [TAG.reasons]: reasons.join('; ').slice(0, 4000) || outcome,
          ...stageTag(v, stages.served() ? v.current_stage : stageOf(v)),
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
     * Makes this version Production: stage, alias, tags. Called only while holding the model's lock; with a
     * `fence`, the model's lock token is checked by the read just before the first write.
     *
     * Without `previousVersion` (lifecycles started before the workflow decided it), the version replaced is
     * remembered in a tag *before* the alias moves, so a retry after a crash between the two still knows it.
     */
    async enterProduction(input: EnterProductionInput): Promise<{ previousVersion?: number }> {
      const { model, version, workflowId, at, tags, fence, previousVersion } = input;
      return guarded(async () => {
        let known = retrying() ? await mlflow.getModelVersion(model, version) : undefined;
        let rm: RegisteredModel | undefined;
        if (fence) {
          checkLease(model, fence);
          rm = await mlflow.getRegisteredModel(model);
          checkFence(rm, fence);
          known ??= fromModel(rm, version);
        }
        const moved = await moveTo(model, version, 'Production', known);
        let v = moved.v;
        observeLeaving(moved.before, 'Production', v, at);
        if (moved.before === 'Staging') {
          const waited = msBetween(v.tags[TAG.stagedAt], tags?.[TAG.approvedAt]);
          if (waited !== undefined) observeApprovalWait(waited, 'approved');
        }

        let recorded: string;
        if (previousVersion !== undefined) {
          recorded = previousVersion === null ? 'none' : String(previousVersion);
        } else {
          const found = v.tags[TAG.previousVersion];
          if (found === undefined) {
            // The alias has not moved yet (that is the next write): its holder is the version being replaced.
            const holder = rm ? aliasHolder(rm) : (await mlflow.getVersionByAlias(model, ALIAS.production))?.version;
            recorded = holder !== undefined && holder !== version ? String(holder) : 'none';
            await mlflow.setVersionTag(model, version, TAG.previousVersion, recorded);
            v = { ...v, tags: { ...v.tags, [TAG.previousVersion]: recorded } };
          } else {
            recorded = found;
          }
        }
        await pointAlias(model, ALIAS.production, version, v);
        await dropAliasIfMine(v, ALIAS.staging);
        await setTags(v, {
          ...stageTag(v, 'Production'),
          [TAG.workflowId]: workflowId,
          [TAG.promotedAt]: at,
          // "none" is what an absent tag says already: written only to correct an earlier run's value.
          ...(recorded !== 'none' || v.tags[TAG.previousVersion] !== undefined ? { [TAG.previousVersion]: recorded } : {}),
          ...tags,
        });
        recordOutcome('promoted');
        return recorded === 'none' ? {} : { previousVersion: Number(recorded) };
      });
    },

    /** Archives a version (superseded or retired). Removes an alias only while it still points at it. */
    async archiveVersion({ model, version, at, supersededBy, outcome, fence }: ArchiveInput): Promise<void> {
      await guarded(async () => {
        let known = retrying() ? await mlflow.getModelVersion(model, version) : undefined;
        if (fence) {
          checkLease(model, fence);
          const rm = await mlflow.getRegisteredModel(model);
          checkFence(rm, fence);
          known ??= fromModel(rm, version);
        }
        const { v, before } = await moveTo(model, version, 'Archived', known);
        observeLeaving(before, 'Archived', v, at);
        await dropAliasIfMine(v, ALIAS.production);
        await dropAliasIfMine(v, ALIAS.staging);
        await setTags(v, {
          ...stageTag(v, 'Archived'),
          [TAG.archivedAt]: at,
          [TAG.outcome]: outcome,
          ...(supersededBy !== undefined ? { [TAG.supersededBy]: String(supersededBy) } : {}),
        });
      });
      recordOutcome(outcome);
    },

    /** Which version holds the `production` alias now (a `superseded` signal is believed only if this agrees). */
    async productionHolder({ model }: { model: string }): Promise<number | undefined> {
      return guarded(async () => (await mlflow.getVersionByAlias(model, ALIAS.production))?.version);
    },

    /** Tags only (deployment facts, flags): a first attempt writes them, a retry writes what is missing. */
    async tagVersion({ model, version, tags }: Key & { tags: Record<string, string> }): Promise<void> {
      await guarded(async () => {
        if (!retrying()) {
          for (const [key, value] of Object.entries(tags)) await mlflow.setVersionTag(model, version, key, value);
          return;
        }
        await setTags(await mlflow.getModelVersion(model, version), tags);
      });
    },
  };
}

export type RegistryActivities = ReturnType<typeof createRegistryActivities>;
