/**
 * `npm run demo -- <model> [accuracy]`: what a training job does, for the README walkthrough — logs a run with
 * metrics and lineage tags to MLflow and registers a new version of <model>. Prints the version number.
 */
import { loadConfig } from '../src/config.js';
import { MlflowClient } from '../src/mlflow/client.js';
import { registerTrainingRun } from '../src/mlflow/training-run.js';

async function main(): Promise<void> {
  const [model, accuracy] = process.argv.slice(2);
  if (!model) throw new Error('usage: npm run demo -- <model> [accuracy]');
  const acc = accuracy === undefined ? 0.93 : Number(accuracy);
  if (!Number.isFinite(acc) || acc < 0 || acc > 1) throw new Error(`accuracy must be a number between 0 and 1 (got "${accuracy}")`);
  const config = loadConfig();
  const uri = config.mlflow.trackingUri ?? `http://127.0.0.1:${config.embedded.mlflowPort}`;
  const mlflow = new MlflowClient({ trackingUri: uri, auth: config.mlflow.auth, timeoutMs: config.mlflow.timeoutMs });
  try {
    const v = await registerTrainingRun(mlflow, model, {
      user: 'carol',
      metrics: { accuracy: acc, f1: Math.max(0, acc - 0.04), latency_p99_ms: 28 },
      params: { model_type: 'gradient_boosting', learning_rate: '0.1', n_estimators: '300' },
      // The lineage the sample policy requires (policies/policy.yaml: requiredTags).
      tags: { 'data.lookback_days': '30', 'training.source': 's3://datalake/fraud/2026-11' },
    });
    process.stdout.write(`registered ${model} version ${v.version} (run ${v.runId}, registered by carol) in ${uri}\n`);
  } finally {
    await mlflow.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
