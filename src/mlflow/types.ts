/**
 * The MLflow REST surface modelgate uses (/api/2.0/mlflow), as plain types and one narrow interface that
 * activities depend on. `MlflowClient` (client.ts) implements it over undici; tests may wrap it.
 */

export type MlflowStage = 'None' | 'Staging' | 'Production' | 'Archived';
export type VersionStatus = 'PENDING_REGISTRATION' | 'READY' | 'FAILED_REGISTRATION';

export interface ModelVersion {
  name: string;
  version: number;
  creation_timestamp: number;
  last_updated_timestamp?: number;
  user_id?: string;
  current_stage: MlflowStage;
  description?: string;
  source: string;
  run_id?: string;
  status: VersionStatus;
  status_message?: string;
  tags: Record<string, string>;
  aliases: string[];
}

export interface RegisteredModel {
  name: string;
  creation_timestamp: number;
  last_updated_timestamp?: number;
  description?: string;
  latest_versions: ModelVersion[];
  tags: Record<string, string>;
  aliases: Array<{ alias: string; version: number }>;
}

export interface Run {
  run_id: string;
  experiment_id: string;
  run_name?: string;
  user_id?: string;
  status: string;
  start_time?: number;
  end_time?: number;
  artifact_uri?: string;
  metrics: Record<string, number>;
  params: Record<string, string>;
  tags: Record<string, string>;
}

export interface SearchVersionsQuery {
  filter?: string;
  maxResults?: number;
  orderBy?: string[];
  pageToken?: string;
}

export interface Page<T> {
  items: T[];
  nextPageToken?: string;
}

/** What the lifecycle activities need from the registry. */
export interface MlflowRegistry {
  getRegisteredModel(name: string): Promise<RegisteredModel>;
  getModelVersion(name: string, version: number): Promise<ModelVersion>;
  searchModelVersions(q: SearchVersionsQuery): Promise<Page<ModelVersion>>;
  getLatestVersions(name: string, stages?: MlflowStage[]): Promise<ModelVersion[]>;
  transitionStage(name: string, version: number, stage: MlflowStage): Promise<ModelVersion>;
  setAlias(name: string, alias: string, version: number): Promise<void>;
  deleteAlias(name: string, alias: string): Promise<void>;
  /** null when the alias is not set. */
  getVersionByAlias(name: string, alias: string): Promise<ModelVersion | null>;
  setVersionTag(name: string, version: number, key: string, value: string): Promise<void>;
  deleteVersionTag(name: string, version: number, key: string): Promise<void>;
  setRegisteredModelTag(name: string, key: string, value: string): Promise<void>;
  getDownloadUri(name: string, version: number): Promise<string>;
  getRun(runId: string): Promise<Run>;
}

/** Writing side used by the demo, tests and benchmarks to create models, runs and versions. */
export interface MlflowAuthoring {
  createRegisteredModel(name: string, opts?: { description?: string; tags?: Record<string, string> }): Promise<RegisteredModel>;
  getOrCreateExperiment(name: string): Promise<string>;
  createRun(experimentId: string, opts?: { runName?: string; startTime?: number; tags?: Record<string, string> }): Promise<Run>;
  logBatch(runId: string, data: { metrics?: Record<string, number>; params?: Record<string, string>; tags?: Record<string, string> }): Promise<void>;
  finishRun(runId: string, status?: 'FINISHED' | 'FAILED'): Promise<void>;
  createModelVersion(opts: { name: string; source: string; runId?: string; tags?: Record<string, string>; description?: string }): Promise<ModelVersion>;
}
