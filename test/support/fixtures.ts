/**
 * Creates what a data scientist's training job leaves in MLflow: an experiment, a finished run with metrics
 * and tags, a registered model and a version of it. Used by lifecycle tests, the demo and benchmarks.
 */
import { MlflowClient } from '../../src/mlflow/client.js';
import type { ModelVersion } from '../../src/mlflow/types.js';

export function testMlflow(uri: string): MlflowClient {
  return new MlflowClient({ trackingUri: uri, timeoutMs: 15_000 });
}

export interface TrainedVersion {
  model: string;
  version: number;
  runId: string;
}

export async function registerTrainedVersion(
  mlflow: MlflowClient,
  model: string,
  opts: { metrics?: Record<string, number>; tags?: Record<string, string>; user?: string; params?: Record<string, string> } = {},
): Promise<TrainedVersion> {
  const experimentId = await mlflow.getOrCreateExperiment(`modelgate-${model}`);
  const run = await mlflow.createRun(experimentId, {
    runName: `train-${model}`,
    tags: { 'mlflow.user': opts.user ?? 'dana', ...opts.tags },
  });
  await mlflow.logBatch(run.run_id, {
    metrics: opts.metrics ?? { accuracy: 0.93, latency_p99_ms: 31 },
    params: opts.params ?? { learning_rate: '0.1' },
    tags: { 'data.lookback_days': '30', 'training.source': 's3://datalake/fraud/2026-11', ...opts.tags },
  });
  await mlflow.finishRun(run.run_id);
  try {
    await mlflow.getRegisteredModel(model);
  } catch {
    await mlflow.createRegisteredModel(model).catch(() => undefined);
  }
  const v: ModelVersion = await mlflow.createModelVersion({ name: model, source: `runs:/${run.run_id}/model`, runId: run.run_id });
  return { model, version: v.version, runId: run.run_id };
}
