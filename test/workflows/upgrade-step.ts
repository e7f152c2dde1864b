/**
 * Build B of the upgrade test (test/upgrade.test.ts): the production workflows plus one extra step, added the
 * way a release adds one. After the `enterProduction` activity (before the stage change is recorded) build B
 * tags the version in MLflow. A lifecycle that reached Production on build A has `enterProduction` followed by
 * the stage upsert in its history, so replaying it with the step unguarded schedules an activity where the
 * history has a search-attribute upsert: a non-determinism error. Guarded by `patched()`, the replay takes
 * the old path and only executions that reach this point on build B take the new one.
 *
 * Written as an outbound interceptor so the test's build B is the production lifecycle plus exactly this step
 * (no copy of lifecycle.ts to drift). A real release writes the step inline, its id in src/workflows/patches.ts.
 */
import { patched, proxyActivities, type WorkflowInterceptors } from '@temporalio/workflow';
import type { RegistryActivities } from '../../src/activities/registry.js';

/** The patch id of the test's change (a real one lives in src/workflows/patches.ts). */
export const UPGRADE_STEP_PATCH = 'upgrade-test-production-tag-v1';
/** The MLflow version tag the extra step writes. */
export const UPGRADE_STEP_TAG = 'modelgate.upgrade_test.build';

const registry = proxyActivities<Pick<RegistryActivities, 'tagVersion'>>({ startToCloseTimeout: '30s' });

export function upgradeStepInterceptors(guarded: boolean): WorkflowInterceptors {
  return {
    outbound: [
      {
        async scheduleActivity(input, next) {
          const result = await next(input);
          if (input.activityType === 'enterProduction' && (!guarded || patched(UPGRADE_STEP_PATCH))) {
            const { model, version } = input.args[0] as { model: string; version: number };
            await registry.tagVersion({ model, version, tags: { [UPGRADE_STEP_TAG]: 'b' } });
          }
          return result;
        },
      },
    ],
  };
}
