/**
 * `modelgate history <model>` / `modelgate history --approver <who>`: every promotion, rejection, expiry and
 * rollback, newest first, from Temporal visibility queries on the lifecycle's search attributes, and from MLflow's
 * `modelgate.*` tags for lifecycles Temporal no longer has.
 */
import { InvalidArgumentError, type Command } from 'commander';
import type { Client } from '@temporalio/client';
import { listHistory, type HistoryRegistry } from '../../audit/history.js';
import { renderHistoryMarkdown, renderHistoryText } from '../../audit/format.js';
import { temporalLifecycleReader } from '../../audit/temporal.js';
import { TIMED_OUT_OUTCOMES, type Outcome } from '../../workflows/definitions.js';
import { CliError } from '../context.js';
import { outputFormat, parsePositiveInt, type CommandOutput } from './audit.js';

const OUTCOMES: Outcome[] = ['rejected_by_evaluation', 'rejected', 'expired', 'superseded', 'retired', 'rolled_back', 'registration_failed', ...TIMED_OUT_OUTCOMES];

function parseOutcome(raw: string): Outcome {
  if (!(OUTCOMES as string[]).includes(raw)) throw new InvalidArgumentError(`expected one of ${OUTCOMES.join(', ')} (got "${raw}")`);
  return raw as Outcome;
}

const stdout: CommandOutput = { write: (t) => void process.stdout.write(t) };
const stderr: CommandOutput = { write: (t) => void process.stderr.write(t) };

export interface HistoryCommandDeps {
  client: Client;
  /** Lifecycles Temporal no longer has (deleted, past retention) are answered from their MLflow tags. */
  mlflow?: HistoryRegistry;
}

export function registerHistoryCommand(program: Command, deps: () => Promise<HistoryCommandDeps>, out: CommandOutput = stdout, err: CommandOutput = stderr): Command {
  return program
    .command('history [model]')
    .description('promotions, rejections, expiries and rollbacks of a model (or by an approver), newest first')
    .option('--approver <who>', 'only lifecycles this person approved')
    .option('--outcome <outcome>', `only this outcome (${OUTCOMES.join(', ')})`, parseOutcome)
    .option('--limit <n>', 'at most this many rows', parsePositiveInt, 200)
    .option('--json', 'rows as JSON')
    .option('--markdown', 'rows as a Markdown table')
    .action(async (model: string | undefined, opts: { approver?: string; outcome?: Outcome; limit: number; json?: boolean; markdown?: boolean }) => {
      const format = outputFormat(opts);
      if (!model && !opts.approver) throw new CliError('give a model or --approver <who>');
      const { client, mlflow } = await deps();
      const entries = await listHistory(
        temporalLifecycleReader(client),
        { ...(model ? { model } : {}), ...(opts.approver ? { approver: opts.approver } : {}), ...(opts.outcome ? { outcome: opts.outcome } : {}) },
        { limit: opts.limit, ...(mlflow ? { mlflow } : {}), note: (line) => err.write(`modelgate: ${line}\n`) },
      );
      out.write(`${format === 'json' ? JSON.stringify(entries, null, 2) : format === 'markdown' ? renderHistoryMarkdown(entries) : renderHistoryText(entries)}\n`);
    });
}
