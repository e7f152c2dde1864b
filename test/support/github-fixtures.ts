/** Shared inputs of the GitHub provider tests and their child worker process. */
import type { MlflowRegistry, ModelVersion, Run } from '../../src/mlflow/types.js';

/** The workers' marker secret in the GitHub tests (the child worker uses the same, as real workers do). */
export const MARKER_SECRET = 'github-test-marker-secret-0123';

/** Registry answers for any model: version N has run `runN`, artifacts under mlflow-artifacts:/3/models/m-N. */
export function fakeMlflow(): Pick<MlflowRegistry, 'getDownloadUri' | 'getModelVersion' | 'getRun'> {
  return {
    getModelVersion(name, version): Promise<ModelVersion> {
      return Promise.resolve({ name, version, creation_timestamp: 0, current_stage: 'Staging', source: `models:/m-${version}`, run_id: `run${version}`, status: 'READY', tags: {}, aliases: [] });
    },
    getDownloadUri(_name, version) {
      return Promise.resolve(`mlflow-artifacts:/3/models/m-${version}/artifacts`);
    },
    getRun(runId): Promise<Run> {
      return Promise.resolve({ run_id: runId, experiment_id: '3', status: 'FINISHED', metrics: {}, params: {}, tags: {} });
    },
  };
}

export function isvcManifest(name: string): string {
  return `# ${name}: managed by modelgate (storageUri and modelgate.io/* only)
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: ${name}
  namespace: models
  annotations:
    serving.kserve.io/deploymentMode: Serverless
spec:
  predictor:
    model:
      modelFormat:
        name: mlflow
      protocolVersion: v2
      storageUri: s3://models/${name}/v0   # first version
`;
}
