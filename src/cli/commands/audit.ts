/**
 * `modelgate audit <model> [--version N] [--at <ISO time>] [--json|--markdown]`: what is serving, its metrics,
 * when it was trained, on what data, who approved it and when, how it compares with the previous Production
 * version, and which version was Production at a given time — from MLflow, Temporal and (optionally) GitOps.
 */
import { InvalidArgumentError, type Command } from 'commander';
import type { Client } from '@temporalio/client';
import type { MlflowRegistry } from '../../mlflow/types.js';
import { collectAudit } from '../../audit/collect.js';
import { renderAuditMarkdown, renderAuditText } from '../../audit/format.js';
import { temporalLifecycleReader } from '../../audit/temporal.js';
import type { ServingReader } from '../../audit/types.js';
import { CliError } from '../context.js';

export interface AuditCommandDeps {
  client: Client;
  mlflow: MlflowRegistry;
  /** What the GitOps manifest / cluster says is deployed (optional). */
  serving?: ServingReader;
}

export interface CommandOutput {
  write(text: string): void;
}

const stdout: CommandOutput = { write: (t) => void process.stdout.write(t) };

export function parsePositiveInt(raw: string): number {
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new InvalidArgumentError(`expected a positive integer (got "${raw}")`);
  return Number(raw);
}

export function parseIsoTime(raw: string): string {
  // ISO 8601 with a date and a time zone, or a plain date (midnight UTC): nothing locale-dependent.
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}))?$/.test(raw) || !Number.isFinite(Date.parse(raw))) {
    throw new InvalidArgumentError(`expected an ISO time such as 2026-03-01T12:00:00Z (got "${raw}")`);
  }
  return new Date(Date.parse(raw)).toISOString();
}

export function outputFormat(opts: { json?: boolean; markdown?: boolean }): 'json' | 'markdown' | 'table' {
  if (opts.json && opts.markdown) throw new CliError('choose one of --json and --markdown');
  return opts.json ? 'json' : opts.markdown ? 'markdown' : 'table';
}

export function registerAuditCommand(program: Command, deps: () => Promise<AuditCommandDeps>, out: CommandOutput = stdout): Command {
  return program
    .command('audit <model>')
    .description('answer the audit questions about a model version (default: the one serving now)')
    .option('--version <n>', 'audit this version instead of the Production one', parsePositiveInt)
    .option('--at <time>', 'which version was Production at this ISO time (audited unless --version is given)', parseIsoTime)
    .option('--json', 'the report as JSON')
    .option('--markdown', 'the report as Markdown (to paste in a ticket)')
    .action(async (model: string, opts: { version?: number; at?: string; json?: boolean; markdown?: boolean }) => {
      const format = outputFormat(opts);
      const d = await deps();
      const report = await collectAudit(
        { mlflow: d.mlflow, lifecycles: temporalLifecycleReader(d.client), ...(d.serving ? { serving: d.serving } : {}) },
        model,
        { ...(opts.version !== undefined ? { version: opts.version } : {}), ...(opts.at ? { at: opts.at } : {}) },
      );
      out.write(`${format === 'json' ? JSON.stringify(report, null, 2) : format === 'markdown' ? renderAuditMarkdown(report) : renderAuditText(report)}\n`);
    });
}
