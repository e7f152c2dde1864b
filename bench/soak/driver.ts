/**
 * The soak's driver: `models` models, each promoting new versions in a loop with a random fate — approved
 * (superseding the one serving), rejected, left to expire, or a rollback of the serving version to the one it
 * replaced — while the worker process (`node dist/src/worker-main.js`) is SIGKILLed and started again about
 * every `killEveryMs`. MLflow is reached through a recording proxy that counts every write it applied. When the
 * time is up the fates in flight are finished with a worker left running, a snapshot is taken and the invariants
 * (invariants.ts) are checked. Reproducible choices: one seeded PRNG per model.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { getState, rollback } from '../../src/client.js';
import { MlflowClient } from '../../src/mlflow/client.js';
import { stageOf } from '../../src/mlflow/stages.js';
import type { LifecycleState } from '../../src/workflows/definitions.js';
import { approve, reject, startLifecycle, testSign } from '../../test/support/identity.js';
import { registerTrainedVersion } from '../../test/support/fixtures.js';
import { startRecordingProxy } from '../../test/support/recording-proxy.js';
import { spawnWorkerProcess, polling, type WorkerProcess } from '../../test/support/worker-process.js';
import { PROJECT_ROOT } from '../../src/stack/embedded.js';
import { diagnoseLifecycle, grantsOfToken } from './diagnose.js';
import { replayAll } from './replay-all.js';
import { checkInvariants, duplicateSideEffects, type InvariantRow, type ModelSnapshot, type SoakSnapshot } from './invariants.js';

export interface SoakOptions {
  temporalAddress: string;
  mlflowUri: string;
  dataDir: string;
  durationMs: number;
  models: number;
  seed: number;
  /** Mean time between worker kills; each is drawn in [0.5, 1.5] × this. Default 30 s. */
  killEveryMs?: number;
  /** Exactly this many kills (the smoke test's 2), the last possibly after the deadline; default: until the deadline. */
  maxKills?: number;
  /** Approval expiry of the soak's policy; default 20 s. */
  expiresAfterSec?: number;
  log?: (line: string) => void;
  /** Prefix of the models' names (unique per run). */
  prefix: string;
}

export interface SoakReport {
  seed: number;
  rows: InvariantRow[];
  pass: boolean;
  snapshot: SoakSnapshot;
  figures: {
    durationS: number;
    outcomes: Record<string, number>;
    lifecyclesStarted: number;
    workerKills: number;
    maxRecoveryMs: number;
    recoveryMs: number[];
    mlflowCalls: number;
    mlflowWrites: number;
    duplicateSideEffects: number;
    /** The driver's own failures (after its retries), each a model's step abandoned. */
    driverErrors: string[];
  };
}

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const policy = (expiresSec: number) => `
defaults:
  evaluation: { thresholds: ["accuracy >= 0.9"], requiredTags: [], noRegression: [] }
  approval: { approvers: [alice, bob], fourEyes: true, quorum: 1, expiresAfter: ${expiresSec}s }
  rollback: { quorum: 1, fourEyes: true }
  deployment: { mode: registry }
`;

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const log = opts.log ?? (() => undefined);
  const killEveryMs = opts.killEveryMs ?? 30_000;
  const started = Date.now();
  const deadline = started + opts.durationMs;
  const taskQueue = `${opts.prefix}-q`;
  const policyFile = join(opts.dataDir, `${opts.prefix}-policy.yaml`);
  writeFileSync(policyFile, policy(opts.expiresAfterSec ?? 20));
  const proxy = await startRecordingProxy(opts.mlflowUri);
  // The driver's own MLflow client goes straight to MLflow: only the worker's calls are side effects to count.
  const mlflow = new MlflowClient({ trackingUri: opts.mlflowUri, timeoutMs: 30_000 });
  const connection = await Connection.connect({ address: opts.temporalAddress });
  const client = new Client({ connection, namespace: 'default' });
  const runs: Record<string, number> = {};
  const started_: string[] = [];
  let worker: WorkerProcess | undefined;
  const workers: WorkerProcess[] = [];
  // Ctrl-C exits through process.exit, past every finally: the workers still go with the process.
  const killAll = () => {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  };
  process.on('exit', killAll);
  const startWorker = () => {
    worker = spawnWorkerProcess({ temporalAddress: opts.temporalAddress, mlflowUri: proxy.url, policyFile, taskQueue, env: { MODELGATE_LOG_LEVEL: 'error' } });
    workers.push(worker);
    return worker;
  };
  const recoveryMs: number[] = [];
  const killsAtRequest: number[] = [];
  let kills = 0;

  const state = async (model: string, version: number): Promise<LifecycleState | undefined> => {
    try {
      return await client.withDeadline(Date.now() + 10_000, () => getState(client, model, version));
    } catch {
      return undefined;
    }
  };
  /** Until the lifecycle's phase satisfies `ok` (the worker may be dead for a while: generous, never a sleep race). */
  const waitFor = async (model: string, version: number, what: string, ok: (s: LifecycleState) => boolean, timeoutMs = 300_000): Promise<LifecycleState> => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const s = await state(model, version);
      if (s && ok(s)) return s;
      if (Date.now() > until) throw new Error(`soak: ${model} v${version} not ${what} within ${timeoutMs / 1000} s (phase ${s?.phase ?? 'unreadable'})`);
      await pause(500);
    }
  };
  /** A decision, sent until the lifecycle shows it took effect (a retry after a lost answer is the same update id). */
  const decideUntil = async (model: string, version: number, send: () => Promise<unknown>, done: (s: LifecycleState) => boolean) => {
    for (;;) {
      try {
        await client.withDeadline(Date.now() + 15_000, send);
      } catch {
        // Worker down, or already decided (duplicate_approval, not_awaiting_approval): the state tells.
      }
      const s = await state(model, version);
      if (s && (done(s) || s.phase === 'done')) return;
      await pause(500);
    }
  };

  const driverErrors: string[] = [];
  /** The driver's own call (its MLflow client, its Temporal client), repeated while it fails: load is no finding. */
  const persist = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    for (let i = 1; ; i++) {
      try {
        return await fn();
      } catch (err) {
        if (i >= 10) throw err;
        log(`driver: ${what} failed (${(err as Error).message.split('\n')[0]}); again`);
        await pause(1000 * i);
      }
    }
  };

  const promotionLoop = async (index: number) => {
    const rnd = prng(opts.seed * 1000 + index);
    const model = `${opts.prefix}-m${index}`;
    await persist(`create ${model}`, () => mlflow.createRegisteredModel(model));
    let serving: number | undefined;
    let replaced: number | undefined;
    while (Date.now() < deadline) {
      try {
        ({ serving, replaced } = await step(model, rnd, serving, replaced));
      } catch (err) {
        // Recorded, and the model goes on: a lifecycle left behind shows in the invariants as stuck.
        const line = `${model}: ${(err as Error).message.split('\n')[0]}`;
        driverErrors.push(line);
        log(`driver error: ${line}`);
        await pause(1000);
      }
    }
  };

  const step = async (model: string, rnd: () => number, serving: number | undefined, replaced: number | undefined): Promise<{ serving?: number; replaced?: number }> => {
    {
      const roll = rnd();
      if (roll < 0.2 && serving !== undefined && replaced !== undefined) {
        // Roll the serving version back to the one it replaced: a new run of that version, approved by bob.
        const target = replaced;
        const from = serving;
        for (;;) {
          try {
            await client.withDeadline(Date.now() + 15_000, () => rollback(client, mlflow, model, { reason: 'soak: rollback', by: 'alice', via: 'cli' }, testSign, taskQueue));
            break;
          } catch (err) {
            const s = await state(model, target);
            if (s && s.phase !== 'done') break; // started by the attempt whose answer was lost
            if ((err as { code?: string }).code === 'already_serving') break;
            await pause(1000);
          }
        }
        runs[`${model}#${target}`] = (runs[`${model}#${target}`] ?? 0) + 1;
        started_.push(`${model}#${target}`);
        await waitFor(model, target, 'awaiting approval', (s) => s.phase === 'awaiting_approval' || s.phase === 'production' || s.phase === 'done');
        await decideUntil(model, target, () => approve(client, model, target, { by: 'bob' }), (s) => s.phase === 'deploying' || s.phase === 'production');
        const s = await waitFor(model, target, 'settled', (x) => x.phase === 'production' || x.phase === 'done');
        if (s.phase === 'production') {
          serving = target;
          replaced = undefined; // the version it replaced was rolled back from: do not roll "forward" to it
          await waitFor(model, from, 'rolled back', (x) => x.phase === 'done');
        }
        return { serving, replaced };
      }
      const accuracy = 0.9 + rnd() / 20;
      const v = (await persist(`register a version of ${model}`, () => registerTrainedVersion(mlflow, model, { metrics: { accuracy } }))).version;
      runs[`${model}#${v}`] = 1;
      started_.push(`${model}#${v}`);
      for (;;) {
        try {
          await client.withDeadline(Date.now() + 15_000, () => startLifecycle(client, model, v, { source: 'test' }, taskQueue));
          break;
        } catch {
          if (await state(model, v)) break;
          await pause(1000);
        }
      }
      await waitFor(model, v, 'awaiting approval', (s) => s.phase === 'awaiting_approval' || s.phase === 'done');
      const fate = rnd();
      if (fate < 0.5) {
        await decideUntil(model, v, () => approve(client, model, v, { by: rnd() < 0.5 ? 'alice' : 'bob' }), (s) => s.phase === 'deploying' || s.phase === 'production');
      } else if (fate < 0.8) {
        await decideUntil(model, v, () => reject(client, model, v, { by: 'bob', reason: 'soak: rejected' }), () => false);
      }
      // else: left to expire.
      const s = await waitFor(model, v, 'settled', (x) => x.phase === 'production' || x.phase === 'done');
      if (s.phase === 'production') {
        if (serving !== undefined) await waitFor(model, serving, 'superseded', (x) => x.phase === 'done');
        replaced = serving;
        serving = v;
      }
      return { serving, replaced };
    }
  };

  const killer = async () => {
    const rnd = prng(opts.seed);
    // With a kill count (the smoke test's), that many kills happen even if the last lands after the deadline.
    const more = () => (opts.maxKills === undefined ? Date.now() < deadline : kills < opts.maxKills);
    while (more()) {
      const wait = killEveryMs * (0.5 + rnd());
      const until = opts.maxKills === undefined ? Math.min(deadline, Date.now() + wait) : Date.now() + wait;
      while (Date.now() < until) await pause(Math.min(500, until - Date.now()));
      if (!more()) break;
      const dead = worker!;
      const killedAt = Date.now();
      killsAtRequest.push(proxy.requests.length);
      await dead.kill();
      kills++;
      await pause(rnd() * 2000); // down for up to 2 s
      const next = startWorker();
      try {
        await polling(client, taskQueue, next, 120_000);
      } catch (err) {
        driverErrors.push(`worker after kill ${kills} not polling: ${(err as Error).message.split('\n')[0]}`);
      }
      // Recovered: a lifecycle answers its state query again (served by the new worker, the dead one's sticky
      // queue handed back). Probed on the most recently started lifecycle.
      const probe = started_[started_.length - 1];
      if (probe) {
        const [m, ver] = [probe.slice(0, probe.lastIndexOf('#')), Number(probe.slice(probe.lastIndexOf('#') + 1))];
        const giveUp = Date.now() + 120_000;
        while (!(await state(m, ver)) && Date.now() < giveUp) await pause(100);
      }
      recoveryMs.push(Date.now() - killedAt);
      log(`worker kill ${kills}: recovered in ${((Date.now() - killedAt) / 1000).toFixed(1)} s`);
    }
  };

  try {
    startWorker();
    await polling(client, taskQueue, worker!, 120_000);
    log(`soak: ${opts.models} models, seed ${opts.seed}, ${(opts.durationMs / 60_000).toFixed(2)} min, task queue ${taskQueue}`);
    const loops = Array.from({ length: opts.models }, (_, i) => promotionLoop(i));
    await Promise.all([killer(), ...loops]);
    log('soak: time is up and every fate in flight settled; taking the snapshot');
    const snapshot = await persist('snapshot', () => takeSnapshot(mlflow, client, opts, runs, proxy.requests, killsAtRequest, log));
    // Every history the soak left, replayed: a non-determinism no kill happened to expose still fails the soak.
    const replay = await replayAll(client, `TaskQueue = "${taskQueue}"`, join(PROJECT_ROOT, 'dist', 'workflow-bundle.js'), opts.dataDir);
    for (const f of replay.failures) log(`replay: ${f.workflowId} run ${f.runId} — ${f.error}; history in ${f.file}`);
    const rows = [
      ...checkInvariants(snapshot),
      {
        name: 'every history replays against the bundle',
        pass: replay.replayed > 0 && replay.failures.length === 0,
        detail: replay.failures.length
          ? `${replay.failures.length} of ${replay.replayed} failed: ${replay.failures.slice(0, 3).map((f) => `${f.workflowId} (${f.error})`).join('; ')}`
          : `${replay.replayed} runs replayed`,
      },
    ];
    const outcomes: Record<string, number> = {};
    for (const m of snapshot.models) for (const v of m.versions) if (runs[`${m.model}#${v.version}`]) {
      const k = v.phase === 'production' ? 'production (serving)' : (v.outcome ?? v.phase ?? 'unknown');
      outcomes[k] = (outcomes[k] ?? 0) + 1;
    }
    const writes = proxy.requests.filter((r) => r.method !== 'GET');
    return {
      seed: opts.seed,
      rows,
      pass: rows.every((r) => r.pass),
      snapshot,
      figures: {
        durationS: (Date.now() - started) / 1000,
        outcomes,
        lifecyclesStarted: started_.length,
        workerKills: kills,
        maxRecoveryMs: recoveryMs.length ? Math.max(...recoveryMs) : 0,
        recoveryMs,
        mlflowCalls: proxy.requests.length,
        mlflowWrites: writes.length,
        duplicateSideEffects: duplicateSideEffects(snapshot).count,
        driverErrors,
      },
    };
  } finally {
    for (const w of workers) await w.kill();
    process.off('exit', killAll);
    await proxy.close();
    await mlflow.close();
    await connection.close();
  }
}

async function takeSnapshot(
  mlflow: MlflowClient,
  client: Client,
  opts: SoakOptions,
  runs: Record<string, number>,
  requests: { method: string; path: string; body: Record<string, unknown> | undefined; status?: number }[],
  killsAtRequest: number[],
  log: (line: string) => void,
): Promise<SoakSnapshot> {
  // One query can time out while the worker replays under load: retried on a bounded budget (about a minute),
  // then judged by describe + history (diagnose.ts), never by a single failed query.
  const stateOf = async (model: string, version: number) => {
    for (let i = 0; i < 6; i++) {
      const s = await client.withDeadline(Date.now() + 10_000, () => getState(client, model, version)).catch(() => undefined);
      if (s) return { s };
      await pause(1000 * (i + 1));
    }
    const { historyJson, ...diagnosis } = await diagnoseLifecycle(client, model, version);
    log(`snapshot: ${model} v${version} state unreadable — ${diagnosis.verdict}: ${diagnosis.text}`);
    if (historyJson) {
      const file = join(opts.dataDir, `stuck-${model}-v${version}.history.json`);
      writeFileSync(file, historyJson);
      log(`snapshot: its history is in ${file}`);
    }
    return { diagnosis };
  };
  const models: ModelSnapshot[] = [];
  for (let i = 0; i < opts.models; i++) {
    const model = `${opts.prefix}-m${i}`;
    const page = await mlflow.searchModelVersions({ filter: `name='${model}'`, maxResults: 1000 });
    // Search answers leave the aliases out: the registered model has them.
    const aliases = new Map<number, string[]>();
    for (const a of (await mlflow.getRegisteredModel(model)).aliases) aliases.set(a.version, [...(aliases.get(a.version) ?? []), a.alias]);
    const versions = [];
    for (const mv of page.items.sort((a, b) => a.version - b.version)) {
      const { s, diagnosis } = runs[`${model}#${mv.version}`] ? await stateOf(model, mv.version) : { s: undefined, diagnosis: undefined };
      versions.push({
        version: mv.version,
        stage: stageOf(mv),
        mlflowStage: mv.current_stage,
        aliases: aliases.get(mv.version) ?? [],
        tags: mv.tags,
        ...(s ? { phase: s.phase, ...(s.outcome ? { outcome: s.outcome } : {}) } : {}),
        ...(diagnosis ? { diagnosis } : {}),
      });
    }
    models.push({ model, versions });
  }
  const applied = requests
    .map((r, i) => ({ r, i }))
    .filter(({ r }) => r.method !== 'GET' && r.status !== undefined && r.status >= 200 && r.status < 300)
    .map(({ r, i }) => ({ path: r.path.replace(/^\/api\/2\.0\/mlflow\//, ''), body: r.body, at: i }));
  const stagesServed = models.some((m) => m.versions.some((v) => v.mlflowStage !== 'None'));
  // Every lock token written more than once: the lock workflow's history says whether it was one grant.
  const tokenWrites = new Map<string, number[]>();
  for (const w of applied) {
    if (!w.path.startsWith('registered-models/set-tag') || w.body?.key !== 'modelgate.lock_token') continue;
    const k = `${String(w.body.name)}#${String(w.body.value)}`;
    tokenWrites.set(k, [...(tokenWrites.get(k) ?? []), w.at]);
  }
  const lockTokenGrants: Record<string, { scheduled: number; attempts: number[] }> = {};
  for (const [k, at] of tokenWrites) {
    if (at.length < 2) continue;
    const [model, token] = [k.slice(0, k.lastIndexOf('#')), Number(k.slice(k.lastIndexOf('#') + 1))];
    const g = await grantsOfToken(client, model, token);
    const killedBetween = killsAtRequest.filter((x) => x > at[0] && x <= at[at.length - 1]).length;
    log(`snapshot: ${model} lock token ${token} written ${at.length}× (requests ${at.join(', ')}); kills between ${killedBetween}; lock history: ${g ? `${g.scheduled} nextFenceToken scheduled, completed on attempt ${g.attempts.join('/') || '?'}` : 'unreadable'}`);
    if (g) lockTokenGrants[k] = g;
  }
  return { models, applied, runs: { ...runs }, stagesServed, lockTokenGrants, killsAtRequest: [...killsAtRequest] };
}
