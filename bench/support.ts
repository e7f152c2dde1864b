/**
 * What every benchmark part shares: its settings (from env, validated once), the context the runner hands to
 * each measurement (addresses of the running stack), the bench policy, an MLflow client that measures its own
 * time, and small statistics / polling / concurrency helpers. No timed assertions live here: the bench reports.
 */
import { execFileSync } from 'node:child_process';
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import type { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import type { History } from '@temporalio/common/lib/proto-utils.js';
import { tsToMs } from '@temporalio/common/lib/time.js';
import { parseEnv } from '../src/config.js';
import { parsePolicy } from '../src/policy/load.js';
import type { PolicySource } from '../src/activities/registry.js';
import type { MlflowRegistry } from '../src/mlflow/types.js';

// ---------------------------------------------------------------------------------------------- settings

const positive = z.coerce.number().positive();
const count = z.coerce.number().int().positive();

const benchEnv = {
  /** Multiplies every count (1 = the figures: P2 100 models / 50 concurrent, P6 1,000 each). */
  MODELGATE_BENCH_SCALE: positive.default(1),
  MODELGATE_BENCH_P1_RUNS: count.optional(),
  MODELGATE_BENCH_P2_MODELS: count.optional(),
  MODELGATE_BENCH_P2_CONCURRENCY: count.optional(),
  MODELGATE_BENCH_P6_WORKFLOWS: count.optional(),
  /** How often the client asks a workflow for its state while waiting (P1: resolution of the wall time). */
  MODELGATE_BENCH_P1_POLL_MS: count.default(20),
  /** P2 polls 50 workflows at once: a slower poll keeps the query load from becoming the thing measured. */
  MODELGATE_BENCH_P2_POLL_MS: count.default(100),
  /**
   * glibc arenas of P6's worker processes. Default 2: with glibc's default (8 per core) RSS grows with the
   * amount of work a process has done on many threads, not with what it keeps, which swamps the per-workflow
   * growth P6 looks for. `default` leaves glibc alone.
   */
  MODELGATE_BENCH_P6_MALLOC_ARENA_MAX: z.string().regex(/^(default|[1-9]\d*)$/, 'a positive integer or "default"').default('2'),
  /** Comma list of parts to run (p1,p2,p3,p4,p5,p6,p8); default all. */
  MODELGATE_BENCH_ONLY: z.string().optional(),
  /** A name for the machine in docs/PERFORMANCE.md (the hostname of a VM says little), e.g. python-svc. */
  MODELGATE_BENCH_MACHINE: z.string().min(1).optional(),
  /** Do not rewrite docs/PERFORMANCE.md (e.g. a quick local check). */
  MODELGATE_BENCH_NO_DOC: z.enum(['0', '1', 'true', 'false']).optional(),
};

export interface BenchSettings {
  scale: number;
  p1Runs: number;
  p2Models: number;
  p2Concurrency: number;
  p6Workflows: number;
  p1PollMs: number;
  p2PollMs: number;
  /** undefined: glibc's default. */
  p6MallocArenaMax?: string;
  only?: Set<string>;
  writeDoc: boolean;
  machineLabel?: string;
}

export function loadBenchSettings(env: NodeJS.ProcessEnv = process.env): BenchSettings {
  const e = parseEnv(benchEnv, env);
  const s = e.MODELGATE_BENCH_SCALE;
  const scaled = (base: number, min: number) => Math.max(min, Math.round(base * s));
  return {
    scale: s,
    p1Runs: e.MODELGATE_BENCH_P1_RUNS ?? scaled(11, 3),
    p2Models: e.MODELGATE_BENCH_P2_MODELS ?? scaled(100, 10),
    p2Concurrency: e.MODELGATE_BENCH_P2_CONCURRENCY ?? scaled(50, 5),
    p6Workflows: e.MODELGATE_BENCH_P6_WORKFLOWS ?? scaled(1000, 50),
    p1PollMs: e.MODELGATE_BENCH_P1_POLL_MS,
    p2PollMs: e.MODELGATE_BENCH_P2_POLL_MS,
    p6MallocArenaMax: e.MODELGATE_BENCH_P6_MALLOC_ARENA_MAX === 'default' ? undefined : e.MODELGATE_BENCH_P6_MALLOC_ARENA_MAX,
    only: e.MODELGATE_BENCH_ONLY ? new Set(e.MODELGATE_BENCH_ONLY.split(',').map((x) => x.trim().toLowerCase())) : undefined,
    writeDoc: !['1', 'true'].includes(e.MODELGATE_BENCH_NO_DOC ?? ''),
    machineLabel: e.MODELGATE_BENCH_MACHINE,
  };
}

// ---------------------------------------------------------------------------------------------- context

/**
 * What the runner hands to every measurement, including the other engineers' `measureP3/P4/P5(ctx)`: the
 * running real stack and a connected client. Measurements start their own workers/servers on their own task
 * queues and stop them before returning.
 */
export interface BenchContext {
  temporalAddress: string;
  namespace: string;
  mlflowUri: string;
  /** A temporary folder for this run (servers' data and logs live under it). */
  dataDir: string;
  client: Client;
  /** For workers created in this process. */
  connection: NativeConnection;
  /** Prebuilt modelgate workflow bundle (dist/workflow-bundle.js). */
  workflowBundlePath: string;
  /** The bench policy as YAML, and as a policy source for createWorker. */
  policyYaml: string;
  policies: PolicySource;
  settings: BenchSettings;
  scale: number;
  /** Process-group leaders of the servers this run started (CPU accounting, bench/cpu.ts). */
  serverPids: { temporal?: number; mlflow?: number };
  log(line: string): void;
}

/** One line of the results table. */
export interface Figure {
  id: string;
  name: string;
  /** The ratio (or value) compared with the target; undefined when not measured. */
  value?: number;
  /** e.g. "≤ 1.25". */
  target: string;
  pass?: boolean;
  /** Raw numbers the ratio came from, printed under the table and in the doc. */
  detail?: string;
  /** Why it was not measured. */
  skipped?: string;
  /** Measured, but the value cannot be judged (e.g. a baseline within noise): why. */
  inconclusive?: string;
}

export function check(value: number, op: '<=' | '>=', bound: number): boolean {
  return op === '<=' ? value <= bound : value >= bound;
}

// ---------------------------------------------------------------------------------------------- policy

/** The bench policy: every model gets `defaults` (two approvers, no four-eyes, quorum 1, registry mode). */
export const BENCH_POLICY_YAML = `
defaults:
  evaluation:
    thresholds: ["accuracy >= 0.5"]
    requiredTags: []
  approval: { approvers: [alice, bob], fourEyes: false, quorum: 1, expiresAfter: 1h }
  deployment: { mode: registry }
`;

export function benchPolicies(): PolicySource {
  return parsePolicy(BENCH_POLICY_YAML, 'bench-policy.yaml');
}

// ---------------------------------------------------------------------------------------------- MLflow time

/** One MLflow call as the worker made it (bench/mlflow-floor.ts replays them). */
export interface TracedCall {
  method: string;
  args: unknown[];
  /** It threw (and the activity retried): a replay skips it. */
  failed?: boolean;
}

export interface CallMeter {
  calls: number;
  /** The calls since the last reset, in order. */
  trace: TracedCall[];
  /** Calls that threw (MLflow 5xx such as SQLite "database is locked", timeouts): the activity retries them. */
  errors: number;
  ms: number;
  reset(): void;
}

/**
 * The worker's MLflow client, wrapped so every call adds its wall time to a meter: the part of a promotion
 * that is MLflow REST work (which the skeleton does not do). Methods are applied to the real client so its
 * #private fields keep working.
 */
export function meteredRegistry<T extends MlflowRegistry>(target: T): { registry: T; meter: CallMeter } {
  const meter: CallMeter = {
    calls: 0,
    trace: [],
    errors: 0,
    ms: 0,
    reset() {
      this.calls = 0;
      this.trace = [];
      this.errors = 0;
      this.ms = 0;
    },
  };
  const registry = new Proxy(target, {
    get(t, prop, receiver) {
      const v: unknown = Reflect.get(t, prop, receiver);
      if (typeof v !== 'function') return v;
      return async (...args: unknown[]) => {
        const traced: TracedCall = { method: String(prop), args };
        meter.trace.push(traced);
        const t0 = performance.now();
        try {
          return await (v as (...a: unknown[]) => Promise<unknown>).apply(t, args);
        } catch (err) {
          traced.failed = true;
          meter.errors++;
          throw err;
        } finally {
          meter.calls++;
          meter.ms += performance.now() - t0;
        }
      };
    },
  });
  return { registry, meter };
}

// ---------------------------------------------------------------------------------------------- helpers

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Runs fn over items with at most `concurrency` in flight; results in input order. */
export async function pool<T, R>(items: T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  });
  await Promise.all(lanes);
  return out;
}

export { pollUntil, StopPolling } from '../src/util/poll.js';

export const fmt = (n: number | undefined, digits = 2): string => (n === undefined || Number.isNaN(n) ? '—' : n.toFixed(digits));
export const ms = (n: number): string => `${n.toFixed(0)} ms`;
export const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

// ---------------------------------------------------------------------------------------------- history

type HistoryEvent = NonNullable<History['events']>[number];
const EventType = {
  ActivityTaskScheduled: 10,
  ActivityTaskStarted: 11,
  ActivityTaskCompleted: 12,
  WorkflowTaskScheduled: 5,
  WorkflowTaskCompleted: 7,
  Signaled: 26,
  UpdateAccepted: 41,
} as const;

export interface HistoryShape {
  activitiesBeforeUpdate: number;
  activitiesAfterUpdate: number;
  /** activity type → [count, total execution ms (started → completed)]. */
  activityTime: Map<string, { count: number; ms: number }>;
  /** Sum of workflow task scheduled → completed. */
  workflowTaskMs: number;
  events: number;
  /** When each activity type last completed, and each signal name was last received (epoch ms). */
  activityCompletedAt: Map<string, number>;
  signalAt: Map<string, number>;
}

/** Reads what a finished-or-parked execution did: its activities (split around the first update) and timings. */
export function historyShape(events: HistoryEvent[]): HistoryShape {
  const shape: HistoryShape = {
    activitiesBeforeUpdate: 0,
    activitiesAfterUpdate: 0,
    activityTime: new Map(),
    workflowTaskMs: 0,
    events: events.length,
    activityCompletedAt: new Map(),
    signalAt: new Map(),
  };
  const byId = new Map<number, HistoryEvent>();
  let updated = false;
  let wftScheduledAt: number | undefined;
  const at = (e: HistoryEvent) => tsToMs(e.eventTime);
  for (const e of events) {
    byId.set(Number(e.eventId), e);
    const type = Number(e.eventType);
    if (type === EventType.UpdateAccepted) updated = true;
    if (type === EventType.ActivityTaskScheduled) {
      if (updated) shape.activitiesAfterUpdate++;
      else shape.activitiesBeforeUpdate++;
    }
    if (type === EventType.WorkflowTaskScheduled) wftScheduledAt = at(e);
    if (type === EventType.Signaled) shape.signalAt.set(e.workflowExecutionSignaledEventAttributes?.signalName ?? '?', at(e));
    if (type === EventType.WorkflowTaskCompleted && wftScheduledAt !== undefined) {
      shape.workflowTaskMs += at(e) - wftScheduledAt;
      wftScheduledAt = undefined;
    }
    if (type === EventType.ActivityTaskCompleted) {
      const attrs = e.activityTaskCompletedEventAttributes!;
      const scheduled = byId.get(Number(attrs.scheduledEventId));
      const started = byId.get(Number(attrs.startedEventId));
      const name = scheduled?.activityTaskScheduledEventAttributes?.activityType?.name ?? '?';
      const entry = shape.activityTime.get(name) ?? { count: 0, ms: 0 };
      entry.count++;
      if (started) entry.ms += at(e) - at(started);
      shape.activityTime.set(name, entry);
      shape.activityCompletedAt.set(name, at(e));
    }
  }
  return shape;
}

// ---------------------------------------------------------------------------------------------- machine

export interface MachineInfo {
  date: string;
  nproc: number;
  memory: string;
  cpuModel: string;
  node: string;
  temporalCli: string;
  mlflow: string;
  loadavg: [number, number, number];
}

/** MLflow's version from the venv's package metadata (running `mlflow --version` imports all of MLflow). */
function mlflowVersion(mlflowBinary: string): string {
  const lib = join(dirname(dirname(mlflowBinary)), 'lib');
  try {
    for (const py of readdirSync(lib)) {
      for (const name of readdirSync(join(lib, py, 'site-packages'))) {
        const m = /^mlflow-([^-]+)\.dist-info$/.exec(name);
        if (m) return m[1];
      }
    }
  } catch {
    // not a venv layout
  }
  return 'unknown';
}

export function machineInfo(temporalBinary: string, mlflowBinary: string): MachineInfo {
  const run = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', timeout: 30_000 }).trim();
    } catch (err) {
      return `unknown (${(err as Error).message.split('\n')[0]})`;
    }
  };
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpuModel = m[1].trim();
  } catch {
    // not Linux: os.cpus() already gave a model
  }
  const la = loadavg();
  return {
    date: run('date', ['-u']),
    nproc: Number(run('nproc', [])) || cpus().length,
    memory: `${(totalmem() / 1024 ** 3).toFixed(1)} GiB total, ${(freemem() / 1024 ** 3).toFixed(1)} GiB free at start`,
    cpuModel,
    node: process.version,
    temporalCli: run(temporalBinary, ['--version']).split('\n')[0] ?? 'unknown',
    mlflow: mlflowVersion(mlflowBinary),
    loadavg: [la[0], la[1], la[2]],
  };
}

/** One measured part: the 1-minute load average before it, its duration, and CPU other processes used. */
export interface PartLoad {
  part: string;
  load: number;
  seconds?: number;
  /** Cores' worth of CPU used by processes outside the bench's tree during the part (bench/cpu.ts). */
  otherCores?: number;
}

/** Other processes averaging more than this many cores during a part make the run "shared". */
export const SHARED_CORES = 0.25;

/**
 * Whether other work competed for the CPU. The load average cannot tell: the bench's own servers and workers
 * keep it above the core count. Where /proc is readable, the CPU used outside the bench's process tree decides;
 * elsewhere, the load average before the bench started anything.
 */
export function machineWasShared(m: MachineInfo, parts: PartLoad[]): boolean {
  const measured = parts.filter((p) => p.otherCores !== undefined);
  if (measured.length) return measured.some((p) => p.otherCores! > SHARED_CORES);
  return m.loadavg[0] > m.nproc;
}

export function describeOtherLoad(parts: PartLoad[]): string {
  return parts.map((p) => `${p.part} ${p.otherCores === undefined ? '?' : p.otherCores.toFixed(2)}`).join(', ');
}
