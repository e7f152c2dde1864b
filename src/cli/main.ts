#!/usr/bin/env node
/**
 * `modelgate` CLI. Every failure a person can cause ends in one line on stderr naming what was wrong and a
 * non-zero exit code — never a stack trace (set MODELGATE_DEBUG=1 to see one).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config.js';
import { ModelgateError } from '../client.js';
import { CliError, createContext, type CliContext } from './context.js';
import { registerLifecycleCommands } from './commands/lifecycle.js';
import { registerAuditCommand } from './commands/audit.js';
import { registerHistoryCommand } from './commands/history.js';
import { registerRollbackCommand } from './commands/rollback.js';
import { registerActiveCommand } from './commands/active.js';
import { registerDryRunCommand } from './commands/dry-run.js';

export function buildProgram(ctx: () => CliContext): Command {
  const program = new Command('modelgate')
    .description('promote MLflow model versions to production through Temporal: evaluation, approval, GitOps, audit')
    .exitOverride()
    .showSuggestionAfterError();
  registerLifecycleCommands(program, ctx);
  registerRollbackCommand(program, ctx);
  registerActiveCommand(program, ctx);
  registerDryRunCommand(program, ctx);
  registerAuditCommand(program, async () => ({ client: await ctx().client(), mlflow: ctx().mlflow(), serving: ctx().serving() }));
  registerHistoryCommand(program, async () => ({ client: await ctx().client(), mlflow: ctx().mlflow() }));
  return program;
}

export async function run(argv: string[]): Promise<number> {
  let context: CliContext | undefined;
  const ctx = () => (context ??= createContext());
  const program = buildProgram(ctx);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2; // commander printed its message
    if (process.env.MODELGATE_DEBUG) console.error(err);
    const message =
      err instanceof CliError || err instanceof ModelgateError || err instanceof ConfigError
        ? err.message
        : err instanceof Error
          ? err.message.split('\n')[0]
          : String(err);
    process.stderr.write(`modelgate: ${message}\n`);
    return 1;
  } finally {
    await context?.close().catch(() => undefined);
  }
}

// Run only as the program (bin symlink or `node dist/src/cli/main.js`), not when imported by tests.
const invoked = process.argv[1] ? realpathSync(process.argv[1]) : '';
if (invoked === fileURLToPath(import.meta.url)) {
  run(process.argv).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`modelgate: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
