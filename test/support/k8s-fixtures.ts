/**
 * Test-driven status progressions for the API double: what ArgoCD and the KServe controller would write,
 * with the CRDs' field names. Every change goes through K8sDouble.modify, so each intermediate object is
 * checked against the CRD schema.
 */
import type { K8sDouble } from './k8s-double.js';
import { ARGO_APPLICATIONS, INFERENCE_SERVICES, type ArgoApplication, type Condition, type InferenceService } from '../../src/k8s/types.js';

export type Mode = 'Serverless' | 'RawDeployment';

const now = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

export function revisionName(isvc: string, generation: number): string {
  return `${isvc}-predictor-${String(generation).padStart(5, '0')}`;
}

function conditions(ready: 'True' | 'False' | 'Unknown', reason?: string, message?: string): Condition[] {
  const at = now();
  const c = (type: string): Condition => ({
    type,
    status: ready,
    lastTransitionTime: at,
    ...(reason ? { reason } : {}),
    ...(message ? { message } : {}),
  });
  return [
    { type: 'IngressReady', status: 'True', lastTransitionTime: at },
    c('PredictorReady'),
    c('Ready'),
  ];
}

const loaded = { transitionStatus: 'UpToDate', states: { activeModelState: 'Loaded', targetModelState: 'Loaded' }, copies: { failedCopies: 0, totalCopies: 1 } };

/** Create an InferenceService that already serves `storageUri` (generation 1, ready). */
export function createServingInferenceService(double: K8sDouble, o: { namespace: string; name: string; storageUri: string; mode: Mode }): InferenceService {
  const rev = revisionName(o.name, 1);
  const isvc: InferenceService = {
    apiVersion: 'serving.kserve.io/v1beta1',
    kind: 'InferenceService',
    metadata: {
      name: o.name,
      namespace: o.namespace,
      annotations: { 'serving.kserve.io/deploymentMode': o.mode },
    },
    spec: {
      predictor: {
        model: { modelFormat: { name: 'mlflow' }, protocolVersion: 'v2', storageUri: o.storageUri },
      },
    },
  };
  double.create(INFERENCE_SERVICES, isvc);
  return double.modify(INFERENCE_SERVICES, o.namespace, o.name, (obj) => {
    (obj as InferenceService).status = {
      observedGeneration: 1,
      deploymentMode: o.mode,
      url: `http://${o.name}.${o.namespace}.example.com`,
      conditions: conditions('True'),
      modelStatus: loaded,
      components:
        o.mode === 'Serverless'
          ? { predictor: { latestCreatedRevision: rev, latestReadyRevision: rev, latestRolledoutRevision: rev, traffic: [{ revisionName: rev, percent: 100, latestRevision: true }] } }
          : { predictor: { url: `http://${o.name}-predictor.${o.namespace}.svc.cluster.local` } },
    };
  });
}

/** The merged manifest applied (by ArgoCD): new storageUri, new generation, status not yet caught up. */
export function applyStorageUri(double: K8sDouble, namespace: string, name: string, storageUri: string): InferenceService {
  return double.modify(INFERENCE_SERVICES, namespace, name, (o) => {
    (o as InferenceService).spec!.predictor!.model!.storageUri = storageUri;
  });
}

function isvcStatus(double: K8sDouble, namespace: string, name: string, edit: (isvc: InferenceService, generation: number) => void): InferenceService {
  return double.modify(INFERENCE_SERVICES, namespace, name, (o) => {
    const isvc = o as InferenceService;
    isvc.status = isvc.status ?? {};
    edit(isvc, isvc.metadata!.generation!);
  });
}

function servingMode(isvc: InferenceService): Mode {
  return (isvc.status?.deploymentMode as Mode | undefined) ?? 'Serverless';
}

/** The controller saw the new generation: a new revision exists but is not ready; traffic stays on the old one. */
export function markProgressing(double: K8sDouble, namespace: string, name: string): InferenceService {
  return isvcStatus(double, namespace, name, (isvc, gen) => {
    const st = isvc.status!;
    st.observedGeneration = gen;
    st.conditions = conditions('Unknown', 'RevisionMissing', 'Configuration is waiting for a Revision to become ready.');
    st.modelStatus = { ...loaded, transitionStatus: 'InProgress', states: { activeModelState: 'Loaded', targetModelState: 'Loading' } };
    if (servingMode(isvc) === 'Serverless') {
      const p = st.components?.predictor ?? {};
      st.components = { ...st.components, predictor: { ...p, latestCreatedRevision: revisionName(name, gen) } };
    }
  });
}

/** The new generation serves: its revision is ready and takes 100% of the traffic. */
export function markReady(double: K8sDouble, namespace: string, name: string): InferenceService {
  return isvcStatus(double, namespace, name, (isvc, gen) => {
    const st = isvc.status!;
    st.observedGeneration = gen;
    st.conditions = conditions('True');
    st.modelStatus = loaded;
    if (servingMode(isvc) === 'Serverless') {
      const rev = revisionName(name, gen);
      const p = st.components?.predictor ?? {};
      st.components = {
        ...st.components,
        predictor: {
          ...p,
          previousRolledoutRevision: p.latestRolledoutRevision,
          latestCreatedRevision: rev,
          latestReadyRevision: rev,
          latestRolledoutRevision: rev,
          traffic: [{ revisionName: rev, percent: 100, latestRevision: true }],
        },
      };
    }
  });
}

/** The new model does not load: KServe blocks the transition; the old revision keeps the traffic. */
export function markFailedToLoad(double: K8sDouble, namespace: string, name: string, message = 'failed to load model: MLmodel not found'): InferenceService {
  return isvcStatus(double, namespace, name, (isvc, gen) => {
    const st = isvc.status!;
    st.observedGeneration = gen;
    st.conditions = conditions('False', 'RevisionFailed', message);
    st.modelStatus = {
      transitionStatus: 'BlockedByFailedLoad',
      states: { activeModelState: 'Loaded', targetModelState: 'FailedToLoad' },
      lastFailureInfo: { reason: 'ModelLoadFailed', message, modelRevisionName: revisionName(name, gen), time: now() },
      copies: { failedCopies: 1, totalCopies: 1 },
    };
    if (servingMode(isvc) === 'Serverless') {
      const p = st.components?.predictor ?? {};
      st.components = { ...st.components, predictor: { ...p, latestCreatedRevision: revisionName(name, gen) } };
    }
  });
}

/** Ready flaps to Unknown (probes re-evaluated, route reprogrammed) without anything having failed. */
export function markReadyUnknown(double: K8sDouble, namespace: string, name: string): InferenceService {
  return isvcStatus(double, namespace, name, (isvc, gen) => {
    isvc.status!.observedGeneration = gen;
    isvc.status!.conditions = conditions('Unknown', 'IngressNotConfigured', 'Ingress has not yet been reconciled.');
  });
}

// ---------------------------------------------------------------- ArgoCD

/** An Application synced and healthy at `revision`. */
export function createSyncedApplication(double: K8sDouble, o: { namespace: string; name: string; revision: string; destinationNamespace: string }): ArgoApplication {
  const app: ArgoApplication = {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Application',
    metadata: { name: o.name, namespace: o.namespace },
    spec: {
      project: 'default',
      destination: { server: 'https://kubernetes.default.svc', namespace: o.destinationNamespace },
      source: { repoURL: 'https://git.example.com/ml/deploy.git', path: 'serving', targetRevision: 'main' },
    },
  };
  double.create(ARGO_APPLICATIONS, app);
  return argoSync(double, o.namespace, o.name, o.revision, 'Succeeded', 'Healthy');
}

/** ArgoCD noticed `revision` (refresh): OutOfSync at it, nothing applied yet. */
export function argoOutOfSync(double: K8sDouble, namespace: string, name: string, revision: string): ArgoApplication {
  return double.modify(ARGO_APPLICATIONS, namespace, name, (o) => {
    const st = (o as ArgoApplication).status!;
    st.sync = { ...st.sync, status: 'OutOfSync', revision };
  });
}

/**
 * A sync operation for `revision` in `phase`, leaving the Application with `health`. Succeeded means Synced at
 * `revision`; Running leaves it OutOfSync; Failed/Error leave it OutOfSync with the operation's message.
 */
export function argoSync(
  double: K8sDouble,
  namespace: string,
  name: string,
  revision: string,
  phase: 'Running' | 'Succeeded' | 'Failed' | 'Error',
  health: 'Healthy' | 'Progressing' | 'Degraded' | 'Missing',
): ArgoApplication {
  return double.modify(ARGO_APPLICATIONS, namespace, name, (o) => {
    const app = o as ArgoApplication;
    const startedAt = now();
    const done = phase !== 'Running';
    app.status = {
      ...app.status,
      sync: { status: phase === 'Succeeded' ? 'Synced' : 'OutOfSync', revision },
      health: { status: health, lastTransitionTime: startedAt },
      operationState: {
        phase,
        message: phase === 'Succeeded' ? 'successfully synced (all tasks run)' : phase === 'Running' ? 'waiting for healthy state' : 'one or more objects failed to apply',
        startedAt,
        ...(done ? { finishedAt: startedAt } : {}),
        operation: { sync: { revision }, initiatedBy: { automated: true } },
        ...(done ? { syncResult: { revision } } : {}),
      },
      reconciledAt: startedAt,
    };
  });
}

// ---------------------------------------------------------------- KServe canary (Serverless)

/**
 * A canary step applied in git and reconciled by "ArgoCD": `spec.predictor.canaryTrafficPercent` set (or
 * removed at 100), with the storageUri of the canaried version. A new generation, status not caught up yet.
 */
export function applyCanaryPercent(double: K8sDouble, namespace: string, name: string, o: { storageUri: string; percent: number }): InferenceService {
  return double.modify(INFERENCE_SERVICES, namespace, name, (obj) => {
    const p = (obj as InferenceService).spec!.predictor!;
    p.model!.storageUri = o.storageUri;
    if (o.percent === 100) delete p.canaryTrafficPercent;
    else p.canaryTrafficPercent = o.percent;
  });
}

/**
 * What the KServe controller reports for a canary split at the current generation: the latest revision
 * (`latest`, tagged latest) ready with `percent`, the previously rolled-out revision (`prev`) with the rest.
 * At 100 the latest revision becomes the rolled-out one; at 0 the previous one takes all the traffic back.
 */
export function markCanarySplit(double: K8sDouble, namespace: string, name: string, o: { latest: string; previous: string; percent: number }): InferenceService {
  return isvcStatus(double, namespace, name, (isvc, gen) => {
    const st = isvc.status!;
    st.observedGeneration = gen;
    st.conditions = conditions('True');
    st.modelStatus = loaded;
    const p = st.components?.predictor ?? {};
    const traffic =
      o.percent === 100
        ? [{ revisionName: o.latest, percent: 100, latestRevision: true, tag: 'latest' }]
        : o.percent === 0
          ? [
              { revisionName: o.previous, percent: 100, latestRevision: false, tag: 'prev' },
              { revisionName: o.latest, percent: 0, latestRevision: true, tag: 'latest' },
            ]
          : [
              { revisionName: o.latest, percent: o.percent, latestRevision: true, tag: 'latest' },
              { revisionName: o.previous, percent: 100 - o.percent, latestRevision: false, tag: 'prev' },
            ];
    st.components = {
      ...st.components,
      predictor: {
        ...p,
        latestCreatedRevision: o.latest,
        latestReadyRevision: o.latest,
        latestRolledoutRevision: o.percent === 100 ? o.latest : o.previous,
        previousRolledoutRevision: o.percent === 100 ? o.previous : p.previousRolledoutRevision,
        traffic,
      },
    };
  });
}
