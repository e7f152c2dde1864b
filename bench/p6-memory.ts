/**
 * P6: worker memory per 1,000 promotions parked on approval ÷ per 1,000 bare signal-waiting workflows.
 * Each side's workflows run in their own worker process (bench/p6-memory-child.ts) on their own task queue,
 * one side at a time, with the same (default) worker settings; the real side's activities (the MLflow calls
 * that take a version to Staging) run in an activity-only worker in this process, so the measured process
 * holds the parked workflows and not the transient garbage and allocator growth of that I/O.
 * Per side: warm up with N/8, then park N more in 16 batches; after each, wait until the worker is idle,
 * GC and read memory. Growth per 1,000 = 1000 × least-squares slope of anonymous RSS over the parked count
 * (batch readings), with its 95% interval: one reading — memory moves in steps — cannot swing it the way a
 * two-point difference can. PASS/MISS only when the ratio's range from both intervals lies on one side of the
 * target; otherwise INCONCLUSIVE with the range. Worker processes run with MALLOC_ARENA_MAX=2 by default
 * (MODELGATE_BENCH_P6_MALLOC_ARENA_MAX): with glibc's 8 arenas per core, RSS grows with the work done on the
 * Rust core's threads rather than with what is kept.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { startLifecycle } from '../test/support/identity.js';
import { createWorker } from '../src/worker.js';
import { PROJECT_ROOT } from '../src/stack/embedded.js';
import { MlflowClient } from '../src/mlflow/client.js';
import { registerTrainedVersion } from '../test/support/fixtures.js';
import { BARE_WORKFLOW } from './workflows/definitions.js';
import { benchId } from './promotion-rig.js';
import { check, fmt, mib, ms, pollUntil, pool, StopPolling, type BenchContext, type Figure } from './support.js';

export interface ChildConfig {
  side: 'real' | 'bare';
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
  mlflowUri: string;
  policyYaml: string;
  baselineBundlePath: string;
  /** glibc MALLOC_ARENA_MAX for the worker process (read by glibc at process start). */
  mallocArenaMax?: string;
}

/**
 * process.memoryUsage() plus RSS split as /proc/self/status does: anonymous pages (the process's own heap,
 * malloc, stacks) and file-backed pages (mapped node binary and native modules — shared, paged in as code
 * runs and reclaimed by the kernel when cold, so they move RSS without anything being kept or freed).
 */
export interface Memory extends NodeJS.MemoryUsage {
  rssAnon: number;
  rssFile: number;
}

export type ChildRequest = { cmd: 'status' } | { cmd: 'measure' } | { cmd: 'stop' };

export interface ChildStatus {
  cached: number;
  inFlightActivations: number;
  inFlightActivities: number;
}

export type ChildMessage =
  | { type: 'ready' }
  | { type: 'status'; status: ChildStatus }
  | { type: 'memory'; memory: Memory; status: ChildStatus }
  | { type: 'stopped' }
  | { type: 'error'; message: string };

export const CHILD_CONFIG_ENV = 'MODELGATE_BENCH_P6_CHILD';

const CHILD_SCRIPT = join(PROJECT_ROOT, 'dist', 'bench', 'p6-memory-child.js');

/** A worker child process and a request/answer channel to it (one request at a time). */
class WorkerChild {
  private readonly child: ChildProcess;
  private waiting?: { want: ChildMessage['type']; resolve(m: ChildMessage): void; reject(e: Error): void };
  private readonly exited: Promise<void>;

  constructor(cfg: ChildConfig) {
    this.child = fork(CHILD_SCRIPT, [], {
      execArgv: ['--expose-gc'],
      env: {
        ...process.env,
        [CHILD_CONFIG_ENV]: JSON.stringify(cfg),
        ...(cfg.mallocArenaMax ? { MALLOC_ARENA_MAX: cfg.mallocArenaMax } : {}),
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (raw) => {
      const m = raw as ChildMessage;
      const w = this.waiting;
      if (!w) return;
      if (m.type === 'error') {
        this.waiting = undefined;
        w.reject(new Error(`P6 ${cfg.side} worker: ${m.message}`));
      } else if (m.type === w.want) {
        this.waiting = undefined;
        w.resolve(m);
      }
    });
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    this.child.once('exit', (code, signal) => {
      this.waiting?.reject(new Error(`P6 ${cfg.side} worker exited (${code ?? signal})`));
      this.waiting = undefined;
    });
    // This process may exit on an error; never leave the child behind.
    process.once('exit', () => this.child.kill('SIGKILL'));
  }

  private next<T extends ChildMessage['type']>(want: T, timeoutMs: number): Promise<Extract<ChildMessage, { type: T }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new Error(`P6 worker: no ${want} answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting = {
        want,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as Extract<ChildMessage, { type: T }>);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  ready(): Promise<unknown> {
    return this.next('ready', 120_000);
  }

  async status(): Promise<ChildStatus> {
    const answer = this.next('status', 30_000);
    this.child.send({ cmd: 'status' } satisfies ChildRequest);
    return (await answer).status;
  }

  async measure(): Promise<Memory> {
    const answer = this.next('memory', 60_000);
    this.child.send({ cmd: 'measure' } satisfies ChildRequest);
    return (await answer).memory;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const answer = this.next('stopped', 60_000).catch(() => undefined);
    this.child.send({ cmd: 'stop' } satisfies ChildRequest);
    await answer;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

interface SideResult {
  n: number;
  /** Memory after GC at each step: the warm-up, then after every batch. */
  points: Array<{ parked: number; memory: Memory }>;
  parkMs: number;
}

const BATCHES = 16;

/** Two-sided 95% t quantiles by degrees of freedom (points − 2); beyond the table ≈ 2. */
const T95: Record<number, number> = {
  1: 12.71, 2: 4.3, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23,
  11: 2.2, 12: 2.18, 13: 2.16, 14: 2.14, 15: 2.13, 16: 2.12,
};

interface Slope {
  /** Growth per parked workflow (bytes). */
  slope: number;
  /** Half-width of its 95% confidence interval. */
  ci: number;
}

/**
 * Least-squares slope of y over x with its 95% interval: growth per parked workflow, robust to where one
 * reading happens to sit (RSS moves in steps as V8 and the allocator return memory), and honest about it.
 */
function fit(points: Array<{ x: number; y: number }>): Slope {
  const k = points.length;
  const mx = points.reduce((a, p) => a + p.x, 0) / k;
  const my = points.reduce((a, p) => a + p.y, 0) / k;
  const sxx = points.reduce((a, p) => a + (p.x - mx) ** 2, 0);
  const slope = points.reduce((a, p) => a + (p.x - mx) * (p.y - my), 0) / sxx;
  const resid = points.reduce((a, p) => a + (p.y - my - slope * (p.x - mx)) ** 2, 0);
  const se = k > 2 ? Math.sqrt(resid / (k - 2) / sxx) : Infinity;
  return { slope, ci: (T95[k - 2] ?? 2) * se };
}

/** Waits until the child has every expected workflow cached and nothing in flight, three polls in a row. */
async function settle(child: WorkerChild, cached: number, what: string): Promise<void> {
  let quiet = 0;
  await pollUntil(
    what,
    async () => {
      const s = await child.status();
      quiet = s.cached >= cached && s.inFlightActivations === 0 && s.inFlightActivities === 0 ? quiet + 1 : 0;
      return quiet >= 3 ? true : undefined;
    },
    { intervalMs: 250, timeoutMs: 30 * 60_000 },
  );
}

async function measureSide(
  ctx: BenchContext,
  side: 'real' | 'bare',
  n: number,
  warm: number,
  baselineBundlePath: string,
  start: (taskQueue: string, i: number) => Promise<unknown>,
  parked: (taskQueue: string, expected: number) => Promise<boolean>,
  /** Starts the side's activity-only worker in this process; returns its stop. */
  activityWorker?: (taskQueue: string) => Promise<() => Promise<void>>,
): Promise<SideResult> {
  const taskQueue = benchId(`p6-${side}`);
  const stopActivities = await activityWorker?.(taskQueue);
  const child = new WorkerChild({
    side,
    taskQueue,
    temporalAddress: ctx.temporalAddress,
    namespace: ctx.namespace,
    mlflowUri: ctx.mlflowUri,
    policyYaml: ctx.policyYaml,
    baselineBundlePath,
    mallocArenaMax: ctx.settings.p6MallocArenaMax,
  });
  try {
    await child.ready();
    const park = async (from: number, count: number) => {
      await pool(Array.from({ length: count }, (_, i) => from + i), 20, (i) => start(taskQueue, i));
      await pollUntil(`${from + count} ${side} workflows parked`, async () => ((await parked(taskQueue, from + count)) ? true : undefined), {
        intervalMs: 500,
        timeoutMs: 30 * 60_000,
      });
      await settle(child, from + count, `${side} worker idle with ${from + count} cached workflows`);
    };
    await park(0, warm);
    const points = [{ parked: warm, memory: await child.measure() }];
    let parkMs = 0;
    for (let b = 0; b < BATCHES; b++) {
      const from = warm + Math.round((n * b) / BATCHES);
      const to = warm + Math.round((n * (b + 1)) / BATCHES);
      const t0 = performance.now();
      await park(from, to - from);
      parkMs += performance.now() - t0;
      points.push({ parked: to, memory: await child.measure() });
      ctx.log(`P6: ${side}: ${to - warm}/${n} parked, RSS ${mib(points.at(-1)!.memory.rss)} (anonymous ${mib(points.at(-1)!.memory.rssAnon)})`);
    }
    return { n, points, parkMs };
  } finally {
    await child.stop();
    await stopActivities?.();
  }
}

export interface P6Result {
  figures: Figure[];
  notes: string[];
}

export async function measureP6(ctx: BenchContext, baselineBundlePath: string): Promise<P6Result> {
  const n = ctx.settings.p6Workflows;
  // As big as a batch, so the activity churn of parking has reached its steady state before the first reading.
  // Warm-up: one eighth of N, as many as two batches.
  const warm = Math.max(10, Math.round(n / 8));
  const total = warm + n;

  // The real side needs a READY version per promotion. One training run backs them all (a registered
  // version only points at a run); registering is setup, not measured.
  ctx.log(`P6: registering ${total} versions (setup, not timed)`);
  const mlflow = new MlflowClient({ trackingUri: ctx.mlflowUri, timeoutMs: 30_000 });
  const keys: Array<{ model: string; version: number }> = [];
  try {
    const first = await registerTrainedVersion(mlflow, benchId('p6'), { user: 'dana', metrics: { accuracy: 0.93 } });
    keys.push({ model: first.model, version: first.version });
    // One version per model: versions of one model entering Staging at the same moment race on MLflow's
    // alias upsert (see the report), which is not what P6 measures.
    const rest = await pool(Array.from({ length: total - 1 }, () => benchId('p6')), 4, async (model) => {
      await mlflow.createRegisteredModel(model);
      const v = await mlflow.createModelVersion({ name: model, source: `runs:/${first.runId}/model`, runId: first.runId });
      return { model, version: v.version };
    });
    keys.push(...rest);
  } finally {
    await mlflow.close();
  }

  ctx.log(`P6: bare side: ${warm} warm-up + ${n} signal-waiting workflows in a worker process of their own`);
  const bare = await measureSide(
    ctx,
    'bare',
    n,
    warm,
    baselineBundlePath,
    (taskQueue, i) => ctx.client.workflow.start(BARE_WORKFLOW, { taskQueue, workflowId: `${taskQueue}/${i}` }),
    // A bare workflow parks in its first workflow task, so "cached by the worker" is "parked".
    () => Promise.resolve(true),
  );
  ctx.log(`P6: real side: ${warm} warm-up + ${n} promotions parked on approval in a worker process of their own`);
  const real = await measureSide(
    ctx,
    'real',
    n,
    warm,
    baselineBundlePath,
    (taskQueue, i) => startLifecycle(ctx.client, keys[i].model, keys[i].version, { source: 'test', by: 'bench' }, taskQueue),
    // ModelStage becomes Staging in the same workflow task that starts waiting for approval.
    async (taskQueue, expected) => {
      const ended = (await ctx.client.workflow.count(`TaskQueue = "${taskQueue}" AND ExecutionStatus != "Running"`)).count;
      if (ended) throw new StopPolling(`${ended} lifecycle(s) on ${taskQueue} ended instead of parking on approval (see the activity warnings above)`);
      return (await ctx.client.workflow.count(`TaskQueue = "${taskQueue}" AND ModelStage = "Staging"`)).count >= expected;
    },
    async (taskQueue) => {
      // The real activities, against the real MLflow, in an activity-only worker of this process.
      const mlflow = new MlflowClient({ trackingUri: ctx.mlflowUri, timeoutMs: 15_000 });
      const worker = await createWorker({
        connection: ctx.connection,
        namespace: ctx.namespace,
        taskQueue,
        client: ctx.client,
        mlflow,
        policies: ctx.policies,
        // No workflow bundle: this worker does not poll for workflow tasks.
        workerOptions: { workflowBundle: undefined },
      });
      const running = worker.run();
      return async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running;
        await mlflow.close();
      };
    },
  );

  type Key = 'rss' | 'rssAnon' | 'rssFile' | 'heapUsed' | 'external';
  const growth = (r: SideResult, key: Key): Slope => {
    // Fitted over the batches only: the reading right after warm-up still carries start-up memory that the
    // process hands back later (it sat 10–20 MiB above the next reading in trial runs).
    const f = fit(r.points.slice(1).map((p) => ({ x: p.parked, y: p.memory[key] })));
    return { slope: f.slope * 1000, ci: f.ci * 1000 };
  };
  const trace = (r: SideResult, key: Key) => r.points.map((p) => mib(p.memory[key]).replace(' MiB', '')).join(' → ') + ' MiB';
  const withCi = (g: Slope) => `${mib(g.slope)} ± ${mib(g.ci).replace(' MiB', '')}`;
  const ratio = (key: Key) => growth(real, key).slope / growth(bare, key).slope;
  // P6 is on anonymous RSS: the process's own memory. File-backed pages (the node binary, the SDK's native
  // module) are shared code the kernel pages in and reclaims on its own schedule; total RSS is in the notes.
  const anonReal = growth(real, 'rssAnon');
  const anonBare = growth(bare, 'rssAnon');
  const p6 = anonReal.slope / anonBare.slope;
  const clear = (g: Slope) => g.slope - g.ci > 0;
  // The ratio's range from the two 95% intervals.
  const low = (anonReal.slope - anonReal.ci) / (anonBare.slope + anonBare.ci);
  const high = (anonReal.slope + anonReal.ci) / (anonBare.slope - anonBare.ci);
  let inconclusive: string | undefined;
  if (!clear(anonReal) || !clear(anonBare)) {
    const sides = [!clear(anonReal) ? `real ${withCi(anonReal)}` : '', !clear(anonBare) ? `bare ${withCi(anonBare)}` : ''].filter(Boolean);
    inconclusive = `growth per 1,000 not distinguishable from zero (${sides.join(', ')}) at ${n} workflows per side: RSS steps exceed it; see P6′`;
  } else if (low <= 1.5 && high > 1.5) {
    inconclusive = `95% range ${fmt(low)}–${fmt(high)} straddles the target at ${n} workflows per side; see P6′`;
  }
  const range = clear(anonReal) && clear(anonBare) ? `, 95% range ${fmt(low)}–${fmt(high)}` : '';
  const arenas = ctx.settings.p6MallocArenaMax ? `MALLOC_ARENA_MAX=${ctx.settings.p6MallocArenaMax}` : 'glibc default arenas';
  const perSide = (key: Key) => `${withCi(growth(real, key))} vs ${withCi(growth(bare, key))}`;
  return {
    figures: [
      {
        id: 'P6',
        name: 'worker RSS (anonymous) per 1,000 parked promotions ÷ bare signal wait',
        // A ratio of two slopes that are not clearly positive says nothing; the detail keeps the raw slopes.
        value: clear(anonReal) && clear(anonBare) ? p6 : undefined,
        target: '≤ 1.5',
        pass: inconclusive ? undefined : check(p6, '<=', 1.5),
        inconclusive,
        detail: `${perSide('rssAnon')} per 1,000${range} (slope over ${n} each, ${BATCHES} batches; ${arenas})`,
      },
      {
        id: 'P6′',
        name: 'context: V8 heap used per 1,000, same ratio',
        value: ratio('heapUsed'),
        target: '(info)',
        detail: `${perSide('heapUsed')} per 1,000`,
      },
    ],
    notes: [
      `P6 growth per 1,000 parked, real vs bare: anonymous RSS ${perSide('rssAnon')}; total RSS ${perSide('rss')} ` +
        `(ratio ${fmt(ratio('rss'))}); file-backed RSS ${perSide('rssFile')}; V8 heap used ${perSide('heapUsed')}; ` +
        `external (Buffers) ${perSide('external')}`,
      `P6 real worker (after warm-up, then every ${n / BATCHES} parked): anonymous RSS ${trace(real, 'rssAnon')}, total RSS ${trace(real, 'rss')}, ` +
        `heap used ${trace(real, 'heapUsed')}; ${n} parked in ${ms(real.parkMs)} (${fmt(n / (real.parkMs / 1000), 1)}/s)`,
      `P6 bare worker: anonymous RSS ${trace(bare, 'rssAnon')}, total RSS ${trace(bare, 'rss')}, heap used ${trace(bare, 'heapUsed')}; ` +
        `${n} parked in ${ms(bare.parkMs)}`,
    ],
  };
}
