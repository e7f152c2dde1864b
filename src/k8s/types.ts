/**
 * The slice of Kubernetes objects modelgate reads. Field names are those of the published CRDs
 * (serving.kserve.io/v1beta1 InferenceService, argoproj.io/v1alpha1 Application); everything is optional
 * because a half-reconciled object may lack any of it.
 */

/** A namespaced custom resource kind: where it lives in the API. */
export interface ResourceKind {
  group: string;
  version: string;
  plural: string;
  kind: string;
}

export const INFERENCE_SERVICES: ResourceKind = {
  group: 'serving.kserve.io',
  version: 'v1beta1',
  plural: 'inferenceservices',
  kind: 'InferenceService',
};

export const ARGO_APPLICATIONS: ResourceKind = {
  group: 'argoproj.io',
  version: 'v1alpha1',
  plural: 'applications',
  kind: 'Application',
};

/** `inferenceservices.serving.kserve.io`, the form RBAC messages and kubectl use. */
export function resourceName(kind: ResourceKind): string {
  return `${kind.plural}.${kind.group}`;
}

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  resourceVersion?: string;
  generation?: number;
  uid?: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  [k: string]: unknown;
}

export interface K8sObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [k: string]: unknown;
}

export interface Condition {
  type: string;
  /** True | False | Unknown */
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  severity?: string;
}

export interface TrafficTarget {
  revisionName?: string;
  percent?: number;
  latestRevision?: boolean;
  tag?: string;
}

export interface ComponentStatus {
  latestCreatedRevision?: string;
  latestReadyRevision?: string;
  latestRolledoutRevision?: string;
  previousRolledoutRevision?: string;
  traffic?: TrafficTarget[];
  url?: string;
}

export interface ModelStatus {
  /** '' | UpToDate | InProgress | BlockedByFailedLoad | InvalidSpec */
  transitionStatus?: string;
  states?: { activeModelState?: string; targetModelState?: string };
  lastFailureInfo?: { reason?: string; message?: string; location?: string; modelRevisionName?: string; exitCode?: number; time?: string };
  copies?: { failedCopies: number; totalCopies?: number };
}

export interface InferenceService extends K8sObject {
  spec?: {
    predictor?: {
      model?: { storageUri?: string; modelFormat?: { name?: string }; protocolVersion?: string; [k: string]: unknown };
      canaryTrafficPercent?: number;
      [k: string]: unknown;
    };
    [k: string]: unknown;
  };
  status?: {
    observedGeneration?: number;
    conditions?: Condition[];
    components?: Record<string, ComponentStatus>;
    modelStatus?: ModelStatus;
    deploymentMode?: string;
    url?: string;
    [k: string]: unknown;
  };
}

export interface ArgoApplication extends K8sObject {
  status?: {
    /** status: Synced | OutOfSync | Unknown */
    sync?: { status?: string; revision?: string; revisions?: string[] };
    health?: {
      /** Healthy | Progressing | Degraded | Suspended | Missing | Unknown */
      status?: string;
      message?: string;
      lastTransitionTime?: string;
    };
    operationState?: {
      /** Running | Succeeded | Failed | Error | Terminating */
      phase?: string;
      message?: string;
      startedAt?: string;
      finishedAt?: string;
      operation?: { sync?: { revision?: string; revisions?: string[] }; [k: string]: unknown };
      syncResult?: { revision?: string; revisions?: string[] };
    };
    [k: string]: unknown;
  };
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchEvent {
  type: WatchEventType;
  object: K8sObject;
}
