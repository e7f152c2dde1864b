/**
 * Baseline workflows the benchmark divides by. They do what a bare Temporal program with the same shape as a
 * promotion does, and nothing else: no MLflow, no search attributes, no lock, no policy.
 * Workflow code: imports only @temporalio/workflow.
 */
import { condition, proxyActivities, setHandler } from '@temporalio/workflow';
import {
  releaseSignal,
  skeletonApproveUpdate,
  skeletonStateQuery,
  type NoopActivities,
  type SkeletonInput,
  type SkeletonState,
} from './definitions.js';

// Same timeouts and retry policy as the lifecycle's MLflow activities, so the server-side bookkeeping matches.
const { noop } = proxyActivities<NoopActivities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
});

/** N no-op activities, one update, M no-op activities; then stays open like a version serving in Production. */
export async function skeletonPromotion(input: SkeletonInput): Promise<SkeletonState> {
  const state: SkeletonState = { phase: 'running', approvals: [] };
  let released = false;
  setHandler(skeletonStateQuery, () => state);
  setHandler(releaseSignal, () => {
    released = true;
  });
  setHandler(
    skeletonApproveUpdate,
    ({ by }) => {
      state.approvals.push(by);
      return state;
    },
    {
      validator: (_approval: { by: string }) => {
        if (state.phase !== 'awaiting_approval') throw new Error(`not awaiting approval (phase ${state.phase})`);
      },
    },
  );
  for (let i = 0; i < input.activitiesBeforeApproval; i++) await noop(i);
  state.phase = 'awaiting_approval';
  await condition(() => state.approvals.length > 0);
  state.phase = 'deploying';
  for (let i = 0; i < input.activitiesAfterApproval; i++) await noop(input.activitiesBeforeApproval + i);
  state.phase = 'production';
  await condition(() => released);
  return state;
}

/** P6 baseline: a workflow that does nothing but wait for one signal. */
export async function bareSignalWait(): Promise<void> {
  let released = false;
  setHandler(releaseSignal, () => {
    released = true;
  });
  await condition(() => released);
}
