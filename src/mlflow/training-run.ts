/**
 * What a training job leaves in MLflow for modelgate to promote: an experiment, a finished run with its
 * metrics, params and lineage tags, the registered model (created if new) and a new version of it from the
 * run. `npm run demo` (scripts/demo-register.ts) uses it for the README walkthrough, the tests' fixtures on top.
 */
import type { MlflowAuthoring, MlflowRegistry } from './types.js';

export interface TrainingRun {
  /** Recorded as the run's `mlflow.user` (client-written: shown in the audit, never trusted by four-eyes). */
  user: string;
  metrics: Record<string, number>;
  params: Record<string, string>;
  /** Run tags, e.g. the lineage tags a policy requires (`data.lookback_days`). */
  tags: Record<string, string>;
}

export interface TrainedVersion {
  model: string;
  version: number;
  runId: string;
}

export async function registerTrainingRun(
  mlflow: MlflowAuthoring & Pick<MlflowRegistry, 'getRegisteredModel'>,
  model: string,
  run: TrainingRun,
): Promise<TrainedVersion> {
  const experimentId = await mlflow.getOrCreateExperiment(`modelgate-${model}`);
  const created = await mlflow.createRun(experimentId, { runName: `train-${model}`, tags: { 'mlflow.user': run.user } });
  await mlflow.logBatch(created.run_id, { metrics: run.metrics, params: run.params, tags: run.tags });
  await mlflow.finishRun(created.run_id);
  try {
    await mlflow.getRegisteredModel(model);
  } catch {
    // Not there yet; a concurrent registration may win the create, which is as good.
    await mlflow.createRegisteredModel(model).catch(() => undefined);
  }
  const v = await mlflow.createModelVersion({ name: model, source: `runs:/${created.run_id}/model`, runId: created.run_id });
  return { model, version: v.version, runId: created.run_id };
}
