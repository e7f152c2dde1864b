/**
 * Running the `git` CLI: execFile (no shell, arguments never interpreted), a timeout so a hung remote cannot
 * block an activity forever, no interactive prompts, and error messages with credentials removed.
 */
import { execFile } from 'node:child_process';
import { redactUrl } from './errors.js';

export interface GitCall {
  /** The git directory (bare repository) the command runs in. */
  gitDir: string;
  args: string[];
  /** Written to stdin (commit messages, blob contents). */
  input?: string;
  /** Extra environment, e.g. GIT_INDEX_FILE for a temporary index. */
  env?: Record<string, string>;
}

export interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs one git command and resolves with its exit code; rejects only when git could not run at all. */
export type GitRunner = (call: GitCall) => Promise<GitResult>;

export interface GitIdentity {
  name: string;
  email: string;
}

export function createGitRunner(opts: { identity: GitIdentity; binary?: string; timeoutMs?: number }): GitRunner {
  const binary = opts.binary ?? 'git';
  const timeout = opts.timeoutMs ?? 120_000;
  return (call) =>
    new Promise((resolve, reject) => {
      const env: NodeJS.ProcessEnv = { ...process.env };
      // A parent git process (hooks, CI) may have set these; they would redirect our commands.
      for (const key of ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_OBJECT_DIRECTORY', 'GIT_NAMESPACE']) delete env[key];
      Object.assign(env, {
        GIT_DIR: call.gitDir,
        GIT_TERMINAL_PROMPT: '0',
        GIT_AUTHOR_NAME: opts.identity.name,
        GIT_AUTHOR_EMAIL: opts.identity.email,
        GIT_COMMITTER_NAME: opts.identity.name,
        GIT_COMMITTER_EMAIL: opts.identity.email,
        LC_ALL: 'C',
        ...call.env,
      });
      const child = execFile(
        binary,
        call.args,
        { cwd: call.gitDir, env, timeout, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
        (err, stdout, stderr) => {
          if (err && typeof (err as { code?: unknown }).code !== 'number') {
            const killed = (err as { killed?: boolean }).killed ? ` (timed out after ${timeout} ms)` : '';
            reject(new Error(redactUrl(`git ${call.args[0]} could not run${killed}: ${err.message}`)));
            return;
          }
          resolve({ code: err ? ((err as { code: number }).code ?? 1) : 0, stdout, stderr });
        },
      );
      child.stdin?.on('error', () => {});
      child.stdin?.end(call.input ?? '');
    });
}

/** Run and require exit 0; the error names the subcommand and git's message (credentials redacted). */
export async function gitOk(run: GitRunner, call: GitCall): Promise<string> {
  const r = await run(call);
  if (r.code !== 0) throw new Error(redactUrl(`git ${call.args[0]} failed (exit ${r.code}): ${lastLines(r.stderr || r.stdout)}`));
  return r.stdout;
}

export function lastLines(text: string, n = 3): string {
  return text.trim().split('\n').slice(-n).join(' / ');
}

/** Remote URLs (`scheme://`, `user@host:path`) are used as given; anything else is a local path. */
export function isRemoteUrl(repo: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(repo) || /^[^/\\\s]+@[^/\\\s:]+:/.test(repo);
}
