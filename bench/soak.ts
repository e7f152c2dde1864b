/**
 * `npm run soak`: a bounded soak on loopback (default 10 minutes). Starts a Temporal dev server and an MLflow
 * server of its own, runs bench/soak/driver.ts (20 models; approvals, rejections, expiries, supersedes and
 * rollbacks at random while the worker process is killed and restarted about every 30 s), then prints the
 * figures and the invariants as a PASS/FAIL table. Exit code 1 on any FAIL; every child is stopped.
 *   MODELGATE_SOAK_MINUTES (default 10, fractional allowed), MODELGATE_SOAK_SEED (default: random, printed),
 *   MODELGATE_SOAK_MODELS (default 20), MODELGATE_SOAK_KILL_EVERY_S (default 30).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { startMlflow, startTemporal, type MlflowServer, type TemporalServer } from '../src/stack/embedded.js';
import { runSoak } from './soak/driver.js';
import { formatTable } from './soak/invariants.js';
import { soakSettings } from './soak/settings.js';

const t0 = performance.now();
const log = (line: string) => process.stderr.write(`[soak ${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
process.once('SIGINT', () => process.exit(130));
process.once('SIGTERM', () => process.exit(143));

async function main(): Promise<number> {
  const settings = soakSettings(process.env);
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  log(`seed ${settings.seed} (MODELGATE_SOAK_SEED=${settings.seed} reproduces the choices), ${settings.minutes} min, ${settings.models} models`);
  const dataDir = mkdtempSync(join(tmpdir(), 'modelgate-soak-'));
  let temporal: TemporalServer | undefined;
  let mlflow: MlflowServer | undefined;
  let ok = false;
  try {
    [temporal, mlflow] = await Promise.all([startTemporal({ dataDir: join(dataDir, 'temporal'), headless: true }), startMlflow({ dataDir: join(dataDir, 'mlflow') })]);
    log(`Temporal ${temporal.address}, MLflow ${mlflow.url}`);
    const report = await runSoak({
      temporalAddress: temporal.address,
      mlflowUri: mlflow.url,
      dataDir,
      durationMs: settings.minutes * 60_000,
      models: settings.models,
      seed: settings.seed,
      killEveryMs: settings.killEverySec * 1000,
      prefix: `soak${settings.seed}`,
      log,
    });
    const f = report.figures;
    const out = (line: string) => process.stdout.write(`${line}\n`);
    out('');
    out(`modelgate soak — ${new Date().toISOString()}; ${cpus().length} cores; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}; seed ${report.seed}`);
    out(`ran ${(f.durationS / 60).toFixed(1)} min (incl. settling), ${settings.models} models, ${f.lifecyclesStarted} lifecycle runs started`);
    out(`outcomes: ${Object.entries(f.outcomes).map(([k, n]) => `${k} ${n}`).join(', ')}`);
    out(`worker kills ${f.workerKills}; recovery after a kill max ${(f.maxRecoveryMs / 1000).toFixed(1)} s (${f.recoveryMs.map((x) => (x / 1000).toFixed(1)).join('/')} s)`);
    out(`MLflow calls by the worker ${f.mlflowCalls} (${f.mlflowWrites} writes); duplicate side effects ${f.duplicateSideEffects}`);
    out(`driver errors ${f.driverErrors.length}${f.driverErrors.length ? `: ${f.driverErrors.slice(0, 5).join('; ')}` : ''}`);
    out('');
    for (const line of formatTable(report.rows)) out(line);
    // A failed run keeps the servers' data and any stuck lifecycle's history for the investigation.
    ok = report.pass;
    return report.pass ? 0 : 1;
  } finally {
    await Promise.allSettled([temporal?.process.stop(), mlflow?.process.stop()]);
    if (ok) rmSync(dataDir, { recursive: true, force: true });
    else log(`servers' data kept in ${dataDir}`);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`modelgate soak: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(2);
  },
);
