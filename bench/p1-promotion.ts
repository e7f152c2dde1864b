/**
 * P1: modelgate's own cost of one full promotion beyond the MLflow floor, ÷ a skeleton workflow with the same
 * number of no-op activities and one update: (real − the same MLflow calls replayed back to back) − skeleton,
 * over skeleton. The MLflow server's cost of recording the promotion is not modelgate's to remove (P7 counts
 * how many calls modelgate makes; the floor is what they cost); the raw real ÷ skeleton stays as context.
 * The activity count comes from the real lifecycle's own history (a warm-up promotion), so the skeleton follows
 * the lifecycle if it changes. Median of N each, interleaved (real, skeleton, skeleton, real, …) so drift in
 * machine load hits both sides.
 *
 * P7: MLflow calls per promotion on the happy path (a fresh model, no previous Production version, nothing
 * retried), counted around every call of the real worker's MLflow client.
 */
import { lifecycleWorkflowId } from '../src/workflows/definitions.js';
import { runSkeletonPromotion, type PromotionTiming } from './skeleton-workflows.js';
import { benchId, readyVersion, runRealPromotion, type PromotionRig, type ReadyVersion } from './promotion-rig.js';
import { replayCalls } from './mlflow-floor.js';
import { check, fmt, historyShape, median, ms, type BenchContext, type Figure, type HistoryShape } from './support.js';
import type { SkeletonInput } from './workflows/definitions.js';

export interface P1Result {
  figures: Figure[];
  /** The lifecycle's shape, reused by P2. */
  shape: SkeletonInput;
  notes: string[];
}

interface RealSample extends PromotionTiming {
  mlflowMs: number;
  mlflowCalls: number;
  /** Calls that failed and were retried (not the happy path). */
  mlflowErrors: number;
  /** Calls per client method, e.g. setVersionTag ×6. */
  byMethod: Map<string, number>;
  workflowId: string;
}

function countByMethod(trace: Array<{ method: string }>): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of trace) out.set(c.method, (out.get(c.method) ?? 0) + 1);
  return out;
}

export async function measureP1(ctx: BenchContext, rig: PromotionRig): Promise<P1Result> {
  const n = ctx.settings.p1Runs;
  const pollMs = ctx.settings.p1PollMs;
  ctx.log(`P1: ${n} real + ${n} skeleton promotions, interleaved (poll ${pollMs} ms)`);

  // Versions are registered before any clock starts: training and registering is not the promotion.
  // One more for the warm-up; the second set takes the replayed MLflow calls (the floor).
  const versions: ReadyVersion[] = [];
  const spares: ReadyVersion[] = [];
  for (let i = 0; i <= n; i++) {
    versions.push(await readyVersion(rig.authoring, benchId('p1')));
    spares.push(await readyVersion(rig.authoring, benchId('p1-floor')));
  }

  // Warm-up (JIT, connections, worker caches) and the lifecycle's shape from its history.
  rig.meter.reset();
  await runRealPromotion(ctx, rig.realQueue, versions[0].model, versions[0].version, pollMs);
  await replayCalls(rig.authoring, [...rig.meter.trace], versions[0], spares[0]);
  const warmHistory = await ctx.client.workflow.getHandle(lifecycleWorkflowId(versions[0].model, versions[0].version)).fetchHistory();
  const real0 = historyShape(warmHistory.events ?? []);
  const shape: SkeletonInput = {
    activitiesBeforeApproval: real0.activitiesBeforeUpdate,
    activitiesAfterApproval: real0.activitiesAfterUpdate,
  };
  ctx.log(
    `P1: the lifecycle ran ${shape.activitiesBeforeApproval} activities before the approval update and ` +
      `${shape.activitiesAfterApproval} after (${[...real0.activityTime.keys()].join(', ')}); the skeleton does the same`,
  );
  await runSkeletonPromotion(ctx.client, rig.skeletonQueue, benchId('p1-skeleton-warm'), shape, pollMs);

  const real: RealSample[] = [];
  const direct: number[] = [];
  const skeleton: Array<PromotionTiming & { workflowId: string }> = [];
  const runReal = async (i: number) => {
    const v = versions[i + 1];
    rig.meter.reset();
    const t = await runRealPromotion(ctx, rig.realQueue, v.model, v.version, pollMs);
    real.push({
      ...t,
      mlflowMs: rig.meter.ms,
      mlflowCalls: rig.meter.calls,
      mlflowErrors: rig.meter.errors,
      byMethod: countByMethod(rig.meter.trace),
      workflowId: lifecycleWorkflowId(v.model, v.version),
    });
    direct.push(await replayCalls(rig.authoring, [...rig.meter.trace], v, spares[i + 1]));
  };
  const runSkeleton = async () => {
    const workflowId = benchId('p1-skeleton');
    skeleton.push({ ...(await runSkeletonPromotion(ctx.client, rig.skeletonQueue, workflowId, shape, pollMs)), workflowId });
  };
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) {
      await runReal(i);
      await runSkeleton();
    } else {
      await runSkeleton();
      await runReal(i);
    }
  }

  const realMedian = median(real.map((r) => r.totalMs));
  const skelMedian = median(skeleton.map((r) => r.totalMs));
  const netMedian = median(real.map((r) => r.totalMs - r.mlflowMs));
  const directMedian = median(direct);
  const raw = realMedian / skelMedian;
  const floor = (skelMedian + directMedian) / skelMedian;
  // Each real run paired with the replay of its own calls: what is left is Temporal + modelgate.
  const beyondFloor = real.map((r, i) => r.totalMs - direct[i]);
  const ownMedian = median(beyondFloor) - skelMedian;
  const p1 = ownMedian / skelMedian;
  // The happy path: runs where no MLflow call failed and was retried.
  const clean = real.filter((r) => r.mlflowErrors === 0);
  const p7 = median((clean.length ? clean : real).map((r) => r.mlflowCalls));
  const p7Run = [...(clean.length ? clean : real)].sort((a, b) => a.mlflowCalls - b.mlflowCalls)[Math.floor((clean.length || real.length) / 2)];

  // Where the time goes, from the median real run's and median skeleton run's histories.
  const pick = <T extends { totalMs: number }>(xs: T[]) => [...xs].sort((a, b) => a.totalMs - b.totalMs)[Math.floor(xs.length / 2)];
  const realMid = pick(real);
  const skelMid = pick(skeleton);
  const realShape = historyShape((await ctx.client.workflow.getHandle(realMid.workflowId).fetchHistory()).events ?? []);
  const skelShape = historyShape((await ctx.client.workflow.getHandle(skelMid.workflowId).fetchHistory()).events ?? []);
  // The Production lock is a second workflow: asked by an activity, granted by a signal back.
  const lockAsked = realShape.activityCompletedAt.get('requestProductionLock');
  const lockGranted = realShape.signalAt.get('lockGranted');
  const lockWaitMs = lockAsked !== undefined && lockGranted !== undefined ? lockGranted - lockAsked : 0;
  const extra = realMid.totalMs - skelMid.totalMs;
  const rest = extra - realMid.mlflowMs - lockWaitMs;
  const notes = [
    `P1 where the real run's extra ${ms(extra)} over the skeleton goes (median runs): MLflow REST ${ms(realMid.mlflowMs)} ` +
      `(${realMid.mlflowCalls} calls, ${fmt(realMid.mlflowMs / Math.max(1, realMid.mlflowCalls), 1)} ms each), Production-lock grant ` +
      `${ms(lockWaitMs)} after asking, the rest ${ms(rest)} (extra workflow tasks for search attributes/memo/details, ` +
      `startLifecycle's describe, the lock workflow's own tasks, poll granularity ${ctx.settings.p1PollMs} ms)`,
    `P1 modelgate's own cost: real ${ms(realMedian)} − skeleton ${ms(skelMedian)} − the same MLflow calls replayed back to back ` +
      `${ms(directMedian)} = ${ms(realMedian - skelMedian - directMedian)} per promotion (medians; P1 pairs each run with its own replay: ${ms(ownMedian)})`,
    `P1 samples (ms) real: ${real.map((r) => r.totalMs.toFixed(0)).join(', ')}; skeleton: ${skeleton.map((r) => r.totalMs.toFixed(0)).join(', ')}; ` +
      `MLflow calls replayed without Temporal: ${direct.map((x) => x.toFixed(0)).join(', ')}`,
    `P1 median real run: start→awaiting ${ms(realMid.toAwaitingMs)}, approve update ${ms(realMid.approveMs)}, ` +
      `approved→production ${ms(realMid.toProductionMs)}; MLflow ${realMid.mlflowCalls} calls, ${ms(realMid.mlflowMs)}`,
    `P1 median skeleton run: start→awaiting ${ms(skelMid.toAwaitingMs)}, approve update ${ms(skelMid.approveMs)}, ` +
      `approved→production ${ms(skelMid.toProductionMs)}`,
    `P1 real activities (execution time in the median run): ${describeActivities(realShape)}; workflow tasks ${ms(realShape.workflowTaskMs)} over ${realShape.events} events`,
    `P1 skeleton activities: ${describeActivities(skelShape)}; workflow tasks ${ms(skelShape.workflowTaskMs)} over ${skelShape.events} events`,
  ];
  return {
    shape,
    notes,
    figures: [
      {
        id: 'P1',
        name: "modelgate's own cost of one promotion beyond the MLflow floor ÷ skeleton (same activities + 1 update)",
        value: p1,
        target: '≤ 0.25',
        pass: check(p1, '<=', 0.25),
        detail:
          `(median of real − its own calls replayed ${ms(median(beyondFloor))} − skeleton ${ms(skelMedian)}) ÷ ${ms(skelMedian)} over ${n} each; ` +
          `${shape.activitiesBeforeApproval}+${shape.activitiesAfterApproval} activities, 1 update`,
      },
      {
        id: 'P7',
        name: 'MLflow calls per promotion (happy path: fresh model, nothing retried)',
        value: p7,
        target: '≤ 12',
        pass: check(p7, '<=', 12),
        detail:
          `median over ${clean.length} of ${real.length} runs without a failed call (all runs ${real.map((r) => r.mlflowCalls).join('/')}); ` +
          `a median run: ${[...p7Run.byMethod.entries()].map(([m, k]) => `${m} ×${k}`).join(', ')}`,
      },
      {
        id: 'P1 raw',
        name: 'context: one promotion ÷ skeleton, MLflow included',
        value: raw,
        target: '(info)',
        detail: `median ${ms(realMedian)} vs ${ms(skelMedian)} over ${n} each`,
      },
      {
        id: 'P1 floor',
        name: 'context: lowest P1 the MLflow calls allow: (skeleton + the same calls replayed) ÷ skeleton',
        value: floor,
        target: '(info)',
        detail: `(${ms(skelMedian)} + ${ms(directMedian)}) ÷ ${ms(skelMedian)}; the ${median(real.map((r) => r.mlflowCalls))} calls of each real promotion issued back to back on a fresh version by a plain loop`,
      },
      {
        id: 'P1′',
        name: 'context: P1 with the measured MLflow REST time subtracted',
        value: netMedian / skelMedian,
        target: '(info)',
        detail: `median ${ms(netMedian)} vs ${ms(skelMedian)}; MLflow median ${ms(median(real.map((r) => r.mlflowMs)))} in ${median(real.map((r) => r.mlflowCalls))} calls`,
      },
    ],
  };
}

function describeActivities(shape: HistoryShape): string {
  return [...shape.activityTime.entries()].map(([name, t]) => `${name} ${fmt(t.ms, 0)} ms${t.count > 1 ? ` ×${t.count}` : ''}`).join(', ');
}
