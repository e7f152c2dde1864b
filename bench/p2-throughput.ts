/**
 * P2: promotions completed per second with M models (one version each), C in flight at a time, ÷ skeleton
 * promotions per second at the same concurrency. Versions are registered before the clock starts. Both sides
 * poll state at the same interval.
 */
import { runSkeletonPromotion, type PromotionTiming } from './skeleton-workflows.js';
import { benchId, readyVersion, runRealPromotion, type PromotionRig } from './promotion-rig.js';
import { availableParallelism } from 'node:os';
import { cpuBetween, cpuSnapshot, describeCpu, type CpuUse } from './cpu.js';
import { check, fmt, median, ms, pool, type BenchContext, type Figure } from './support.js';
import type { SkeletonInput } from './workflows/definitions.js';

export interface P2Result {
  figures: Figure[];
  notes: string[];
}

interface Round {
  perSecond: number;
  wallMs: number;
  timings: PromotionTiming[];
  cpu: CpuUse;
}

/** Times one round and the CPU every process spent on it (servers, and this process: worker and clients). */
async function round(ctx: BenchContext, run: () => Promise<PromotionTiming[]>): Promise<Round> {
  const before = cpuSnapshot(ctx.serverPids);
  const t0 = performance.now();
  const timings = await run();
  const wallMs = performance.now() - t0;
  return { perSecond: timings.length / (wallMs / 1000), wallMs, timings, cpu: cpuBetween(before, cpuSnapshot(ctx.serverPids)) };
}

function p95(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(s.length * 0.95) - 1)] ?? NaN;
}

export async function measureP2(ctx: BenchContext, rig: PromotionRig, shape: SkeletonInput): Promise<P2Result> {
  const { p2Models: m, p2Concurrency: c, p2PollMs: pollMs } = ctx.settings;
  ctx.log(`P2: registering ${m} models (setup, not timed)`);
  const models = Array.from({ length: m }, () => benchId('p2'));
  const versions = await pool(models, 4, (model) => readyVersion(rig.authoring, model));

  ctx.log(`P2: ${m} skeleton promotions, ${c} concurrent (poll ${pollMs} ms)`);
  const skel = await round(ctx, () =>
    pool(models, c, () => runSkeletonPromotion(ctx.client, rig.skeletonQueue, benchId('p2-skeleton'), shape, pollMs)),
  );

  ctx.log(`P2: ${m} real promotions, ${c} concurrent`);
  rig.meter.reset();
  const real = await round(ctx, () => pool(models, c, (model, i) => runRealPromotion(ctx, rig.realQueue, model, versions[i].version, pollMs)));
  const mlflowCalls = rig.meter.calls;
  const mlflowErrors = rig.meter.errors;
  const mlflowMs = rig.meter.ms;

  const p2 = real.perSecond / skel.perSecond;
  const cores = availableParallelism();
  // On a saturated machine throughput is CPU per promotion: this ratio is what the CPU alone allows.
  const cpuRatio = skel.cpu.total / real.cpu.total;
  const busy = (r: Round) => r.cpu.total / (r.cpu.wallS * cores);
  const lat = (r: Round) => `latency median ${ms(median(r.timings.map((t) => t.totalMs)))}, p95 ${ms(p95(r.timings.map((t) => t.totalMs)))}`;
  return {
    figures: [
      {
        id: 'P2',
        name: `promotions/s, ${m} models, ${c} concurrent ÷ skeleton`,
        value: p2,
        target: '≥ 0.8',
        pass: check(p2, '>=', 0.8),
        detail: `${fmt(real.perSecond)}/s (${ms(real.wallMs)}) vs ${fmt(skel.perSecond)}/s (${ms(skel.wallMs)})`,
      },
      {
        id: 'P2′',
        name: 'context: CPU per promotion, skeleton ÷ real (all processes)',
        value: cpuRatio,
        target: '(info)',
        detail:
          `${fmt((real.cpu.total / m) * 1000, 0)} vs ${fmt((skel.cpu.total / m) * 1000, 0)} CPU-ms per promotion; the machine was ` +
          `${fmt(busy(real) * 100, 0)}% / ${fmt(busy(skel) * 100, 0)}% busy (real / skeleton), so P2 cannot exceed this ratio here`,
      },
    ],
    notes: [
      `P2 real: ${lat(real)}; MLflow ${mlflowCalls} calls (${fmt(mlflowCalls / m, 1)} per promotion, ${mlflowErrors} failed and retried), ` +
        `summed call time ${ms(mlflowMs)} = ${fmt(mlflowMs / (real.wallMs * c), 2)} of the ${c} lanes' wall time`,
      `P2 skeleton: ${lat(skel)}`,
      `P2 real round ${describeCpu(real.cpu, cores)}`,
      `P2 skeleton round ${describeCpu(skel.cpu, cores)}`,
    ],
  };
}
