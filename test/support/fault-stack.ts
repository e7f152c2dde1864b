/**
 * Servers of a fault test's own, apart from the shared stack that scripts/run-tests.ts starts (other test files
 * use that one, so it is never killed): a Temporal dev server or an MLflow server that the test SIGKILLs and
 * starts again on the same ports and the same files on disk, so the restarted server has the state the killed
 * one had written. Both are started the way the embedded stack starts them (src/stack/embedded.ts), modelgate's
 * search attributes included.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startMlflow, startTemporal, type MlflowServer, type TemporalServer } from '../../src/stack/embedded.js';
import { freePort, type ManagedProcess } from '../../src/stack/processes.js';
import { unique } from './stack.js';

/** SIGKILL the process group and wait until the leader is gone (its ports are free again). */
export function killHard(proc: ManagedProcess): Promise<void> {
  const { child } = proc;
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  proc.kill();
  return gone;
}

export interface RestartableServer<S> {
  /** The server now running (a new object after each restart). */
  current(): S;
  /** kill -9; resolves once the process has exited. */
  kill(): Promise<void>;
  /** Start again on the same port and data folder; resolves once it answers. */
  restart(): Promise<S>;
  stop(): Promise<void>;
}

function restartable<S extends { process: ManagedProcess }>(first: S, start: () => Promise<S>): RestartableServer<S> {
  let server = first;
  return {
    current: () => server,
    kill: () => killHard(server.process),
    async restart() {
      server = await start();
      return server;
    },
    stop: () => server.process.stop(),
  };
}

/**
 * A Temporal dev server of this file's own: a fixed port and a `--db-filename` in a fresh folder under the test
 * data folder, so a restart after kill -9 comes back with every workflow's history.
 */
export async function startOwnTemporal(dataRoot: string): Promise<RestartableServer<TemporalServer> & { address: string; dbFile: string }> {
  const dataDir = join(dataRoot, unique('own-temporal'));
  mkdirSync(dataDir, { recursive: true });
  const port = await freePort();
  const start = () => startTemporal({ dataDir, port, headless: true, persist: true });
  const first = await start();
  return { ...restartable(first, start), address: first.address, dbFile: first.dbFile };
}

/** An MLflow server of this file's own: a fixed port, a SQLite store and artifact folder that survive a restart. */
export async function startOwnMlflow(dataRoot: string): Promise<RestartableServer<MlflowServer> & { url: string }> {
  const dataDir = join(dataRoot, unique('own-mlflow'));
  const port = await freePort();
  const start = () => startMlflow({ dataDir, port });
  const first = await start();
  return { ...restartable(first, start), url: first.url };
}
