/**
 * Test entry (`npm test` → scripts/test.sh → here): starts one real Temporal dev server and one real MLflow
 * server on free loopback ports in a fresh temporary data folder, runs node's test runner over the compiled
 * tests with their addresses in the environment, then stops both. Extra arguments select test files.
 * The tests inherit the rest of the environment, MODELGATE_CRD_DIR (where the published CRD schemas are,
 * test/support/k8s-crds.ts) included.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PROJECT_ROOT, startMlflow, startTemporal } from '../src/stack/embedded.js';

function findTests(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

async function main(): Promise<number> {
  const dataDir = mkdtempSync(join(tmpdir(), 'modelgate-test-'));
  const files = process.argv.slice(2).length
    ? process.argv.slice(2).map((f) => resolve(f))
    : findTests(join(PROJECT_ROOT, 'dist', 'test'));
  process.stderr.write(`modelgate tests: starting Temporal and MLflow in ${dataDir}\n`);
  const [temporal, mlflow] = await Promise.all([
    startTemporal({ dataDir: join(dataDir, 'temporal'), headless: true }),
    startMlflow({ dataDir: join(dataDir, 'mlflow') }),
  ]);
  // Interrupted (Ctrl-C, CI timeout): stop the servers too, not only this process.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      temporal.process.kill();
      mlflow.process.kill();
      process.exit(130);
    });
  }
  process.stderr.write(`modelgate tests: Temporal ${temporal.address}, MLflow ${mlflow.url}; ${files.length} files\n`);
  const code = await new Promise<number>((resolveCode) => {
    const child = spawn(
      process.execPath,
      ['--test', '--test-reporter=spec', `--test-concurrency=${process.env.MODELGATE_TEST_CONCURRENCY ?? '1'}`, ...files],
      {
        stdio: 'inherit',
        env: {
          ...process.env,
          MODELGATE_TEST_TEMPORAL_ADDRESS: temporal.address,
          MODELGATE_TEST_MLFLOW_URI: mlflow.url,
          MODELGATE_TEST_DATA_DIR: dataDir,
        },
      },
    );
    child.on('exit', (c, s) => resolveCode(c ?? (s ? 1 : 0)));
  });
  await Promise.all([temporal.process.stop(), mlflow.process.stop()]);
  if (code === 0 && !process.env.MODELGATE_KEEP_TEST_DATA) rmSync(dataDir, { recursive: true, force: true });
  else process.stderr.write(`modelgate tests: logs kept in ${dataDir}\n`);
  return code;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`modelgate tests: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
