/** Names and payloads of the baseline workflows, shared by workflow code and the bench's client side. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

export type SkeletonPhase = 'running' | 'awaiting_approval' | 'deploying' | 'production';

export interface SkeletonState {
  phase: SkeletonPhase;
  approvals: string[];
}

export interface SkeletonInput {
  /** No-op activities run before the approval update (the real lifecycle's count, read from its history). */
  activitiesBeforeApproval: number;
  activitiesAfterApproval: number;
}

export interface NoopActivities {
  noop(step: number): Promise<void>;
}

export const SKELETON_WORKFLOW = 'skeletonPromotion';
export const BARE_WORKFLOW = 'bareSignalWait';

export const skeletonApproveUpdate = defineUpdate<SkeletonState, [{ by: string }]>('approve');
export const skeletonStateQuery = defineQuery<SkeletonState>('state');
/** Lets a baseline finish (not used while measuring: like a lifecycle in Production, they stay open). */
export const releaseSignal = defineSignal('release');
