/**
 * `npm run bench`: starts a real Temporal dev server and a real MLflow server of its own, measures P1, P2, P6, P8, P9
 * (bench/p1-promotion.ts, p2-throughput.ts, p6-memory.ts, p8-history.ts, p9-canary.ts) and P3/P4/P5 (other parts' functions, see
 * external.ts) against baselines run in the same process, prints a table with targets and PASS/MISS, writes
 * docs/PERFORMANCE.md, and stops everything it started. A figure is reported, never asserted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { resolveMlflowBinary, resolveTemporalBinary, startMlflow, startTemporal, type MlflowServer, type TemporalServer } from '../src/stack/embedded.js';
import { WORKFLOW_BUNDLE_PATH } from '../src/worker.js';
import { bundleBaselines } from './skeleton-workflows.js';
import { startRig } from './promotion-rig.js';
import { measureP1 } from './p1-promotion.js';
import { measureP2 } from './p2-throughput.js';
import { measureP6 } from './p6-memory.js';
import { measureP8 } from './p8-history.js';
import { EXTERNAL_PARTS, measureExternal } from './external.js';
import { measureP9 } from './p9-canary.js';
import { printTable, writePerformanceDoc } from './report.js';
import { otherCores, otherLoadReading } from './cpu.js';
import {
  BENCH_POLICY_YAML,
  benchPolicies,
  loadBenchSettings,
  machineInfo,
  machineWasShared,
  describeOtherLoad,
  SHARED_CORES,
  type PartLoad,
  type BenchContext,
  type Figure,
} from './support.js';

const started = performance.now();
const log = (line: string) => process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);

// Ctrl-C: exit through process.exit so the stack's exit hook stops the servers and worker children.
process.once('SIGINT', () => process.exit(130));
process.once('SIGTERM', () => process.exit(143));

async function main(): Promise<number> {
  const settings = loadBenchSettings(process.env);
  const wants = (part: string) => !settings.only || settings.only.has(part);
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const machine = machineInfo(resolveTemporalBinary(), resolveMlflowBinary());
  log(`machine: ${machine.nproc} cores, ${machine.cpuModel}; load average ${machine.loadavg.map((x) => x.toFixed(2)).join(' ')}`);
  log(`scale ${settings.scale}: P1 ${settings.p1Runs} runs, P2 ${settings.p2Models} models / ${settings.p2Concurrency} concurrent, P6 ${settings.p6Workflows} workflows`);

  const dataDir = mkdtempSync(join(tmpdir(), 'modelgate-bench-'));
  let temporal: TemporalServer | undefined;
  let mlflow: MlflowServer | undefined;
  let connection: NativeConnection | undefined;
  let client: Client | undefined;
  let ok = false;
  const figures: Figure[] = [];
  const notes: string[] = [];
  const loadDuring: PartLoad[] = [];
  try {
    log(`starting Temporal and MLflow in ${dataDir}`);
    [temporal, mlflow] = await Promise.all([
      startTemporal({ dataDir: join(dataDir, 'temporal'), headless: true }),
      startMlflow({ dataDir: join(dataDir, 'mlflow') }),
    ]);
    log(`Temporal ${temporal.address} (${machine.temporalCli}), MLflow ${mlflow.url}`);
    connection = await NativeConnection.connect({ address: temporal.address });
    client = new Client({ connection, namespace: temporal.namespace });
    const baselineBundle = await bundleBaselines(dataDir);
    const ctx: BenchContext = {
      temporalAddress: temporal.address,
      namespace: temporal.namespace,
      mlflowUri: mlflow.url,
      dataDir,
      client,
      connection,
      workflowBundlePath: WORKFLOW_BUNDLE_PATH,
      policyYaml: BENCH_POLICY_YAML,
      policies: benchPolicies(),
      settings,
      scale: settings.scale,
      serverPids: { temporal: temporal.process.child.pid, mlflow: mlflow.process.child.pid },
      log,
    };

    /** Runs one part; a part that fails becomes "not measured (why)" and the bench goes on. */
    const part = async (id: string, ids: string[], fn: () => Promise<{ figures: Figure[]; notes?: string[] }>) => {
      const entry: PartLoad = { part: id, load: loadavg()[0] };
      loadDuring.push(entry);
      const t0 = performance.now();
      const other0 = otherLoadReading();
      const settle = () => {
        entry.seconds = (performance.now() - t0) / 1000;
        entry.otherCores = otherCores(other0, otherLoadReading(), entry.seconds);
      };
      try {
        const r = await fn();
        figures.push(...r.figures);
        notes.push(...(r.notes ?? []));
        settle();
      } catch (err) {
        settle();
        const why = (err instanceof Error ? err.message : String(err)).split('\n')[0];
        log(`${id}: failed: ${why}`);
        for (const x of ids) figures.push({ id: x, name: x, target: '', skipped: why });
      }
    };

    if (wants('p1') || wants('p2')) {
      const rig = await startRig(ctx, baselineBundle);
      try {
        let shape: Awaited<ReturnType<typeof measureP1>>['shape'] | undefined;
        await part('P1', ['P1'], async () => {
          const r = await measureP1(ctx, rig);
          shape = r.shape;
          return r;
        });
        if (wants('p2')) {
          await part('P2', ['P2'], async () => {
            if (!shape) throw new Error('P1 did not establish the lifecycle shape');
            return measureP2(ctx, rig, shape);
          });
        }
      } finally {
        await rig.stop();
      }
    }
    if (wants('p6')) await part('P6', ['P6'], () => measureP6(ctx, baselineBundle));
    if (wants('p8')) await part('P8', ['P8'], () => measureP8(ctx));
    for (const ext of EXTERNAL_PARTS) {
      if (!wants(ext.id.toLowerCase())) continue;
      await part(ext.id, [ext.id], async () => {
        log(`${ext.id}: ${ext.exportName}(ctx) from bench/${ext.file.replace(/\.js$/, '.ts')}`);
        return { figures: await measureExternal(ext, ctx) };
      });
    }
    if (wants('p9')) await part('P9', ['P9a', 'P9b'], async () => ({ figures: await measureP9(ctx) }));
    ok = true;
  } finally {
    await connection?.close().catch(() => undefined);
    await Promise.allSettled([temporal?.process.stop(), mlflow?.process.stop()]);
    if (ok) rmSync(dataDir, { recursive: true, force: true });
    else log(`servers' logs kept in ${dataDir}`);
  }

  const totalMs = performance.now() - started;
  const shared = machineWasShared(machine, loadDuring);
  const out = (line: string) => process.stdout.write(`${line}\n`);
  out('');
  out(`modelgate bench — ${machine.date}; ${machine.nproc} cores ${machine.cpuModel}; Node ${machine.node}; ${machine.temporalCli}`);
  out(`load average at start ${machine.loadavg.map((x) => x.toFixed(2)).join(' ')}; before parts: ${loadDuring.map((x) => `${x.part} ${x.load.toFixed(2)} (took ${x.seconds?.toFixed(0) ?? '?'} s)`).join(', ')}`);
  out(`CPU used by processes outside the bench, per part (cores): ${describeOtherLoad(loadDuring)}`);
  if (shared) out(`NOTE: the machine was shared while measuring (other processes used over ${SHARED_CORES} core in a part): figures are provisional.`);
  out('');
  printTable(figures, out);
  if (notes.length) {
    out('');
    for (const n of notes) out(n);
  }
  if (settings.writeDoc && !settings.only) {
    const path = writePerformanceDoc({ machine, settings, figures, notes, loadDuring, shared, totalMs });
    out('');
    out(`wrote ${path}`);
  }
  out(`bench took ${(totalMs / 1000).toFixed(0)} s`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`modelgate bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
