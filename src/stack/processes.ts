/**
 * Child processes of the embedded stack: started in their own process group so that stopping one also stops
 * what it forked (MLflow runs uvicorn workers), and killed when this process exits so nothing is orphaned.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { pollUntil, StopPolling } from '../util/poll.js';

export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  logFile: string;
  /** SIGTERM the group, SIGKILL after graceMs. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL the group at once (fault tests). */
  kill(): void;
}

const live = new Set<ManagedProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const p of live) killGroup(p.child, 'SIGKILL');
  });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

export function startProcess(
  name: string,
  command: string,
  args: string[],
  opts: { logFile: string; env?: NodeJS.ProcessEnv; cwd?: string },
): ManagedProcess {
  installExitHook();
  mkdirSync(dirname(opts.logFile), { recursive: true });
  const log = createWriteStream(opts.logFile, { flags: 'a' });
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const managed: ManagedProcess = {
    name,
    child,
    logFile: opts.logFile,
    async stop(graceMs = 5000) {
      killGroup(child, 'SIGTERM');
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
      // Children of the group may outlive the leader for a moment.
      killGroup(child, 'SIGKILL');
      live.delete(managed);
    },
    kill() {
      killGroup(child, 'SIGKILL');
      live.delete(managed);
    },
  };
  live.add(managed);
  child.once('exit', () => live.delete(managed));
  return managed;
}

/** Ask the kernel for a free loopback port. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** Poll `probe` until it resolves true; fail with the process's name and log file when it dies or times out. */
export async function waitUntil(
  what: string,
  probe: () => Promise<boolean>,
  opts: { timeoutMs: number; intervalMs?: number; process?: ManagedProcess },
): Promise<void> {
  const logs = opts.process ? `; see ${opts.process.logFile}` : '';
  try {
    await pollUntil(
      what,
      async () => {
        const proc = opts.process?.child;
        if (proc && (proc.exitCode !== null || proc.signalCode !== null)) {
          throw new StopPolling(`${what}: process exited (code ${proc.exitCode ?? proc.signalCode})${logs}`);
        }
        return probe();
      },
      { timeoutMs: opts.timeoutMs, intervalMs: opts.intervalMs ?? 200 },
    );
  } catch (err) {
    if (err instanceof StopPolling) throw new Error(err.message);
    throw new Error(`${(err as Error).message}${logs}`);
  }
}
