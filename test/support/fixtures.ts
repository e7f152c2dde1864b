/**
 * Creates what a data scientist's training job leaves in MLflow (src/mlflow/training-run.ts) with the tests'
 * defaults: a run by dana with passing metrics and the lineage tags the test policies require. Used by
 * lifecycle tests and benchmarks.
 */
import { MlflowClient } from '../../src/mlflow/client.js';
import { registerTrainingRun, type TrainedVersion } from '../../src/mlflow/training-run.js';

export type { TrainedVersion };

export function testMlflow(uri: string): MlflowClient {
  return new MlflowClient({ trackingUri: uri, timeoutMs: 15_000 });
}

export function registerTrainedVersion(
  mlflow: MlflowClient,
  model: string,
  opts: { metrics?: Record<string, number>; tags?: Record<string, string>; user?: string; params?: Record<string, string> } = {},
): Promise<TrainedVersion> {
  return registerTrainingRun(mlflow, model, {
    user: opts.user ?? 'dana',
    metrics: opts.metrics ?? { accuracy: 0.93, latency_p99_ms: 31 },
    params: opts.params ?? { learning_rate: '0.1' },
    tags: { 'data.lookback_days': '30', 'training.source': 's3://datalake/fraud/2026-11', ...opts.tags },
  });
}
