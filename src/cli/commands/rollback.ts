/**
 * `modelgate rollback <model> [--to <version>] --reason <text>`: return an earlier Production version through the
 * API (approve scope; the request is signed there as the token's identity). Without --to, the version the
 * serving one replaced. The rollback is a new run of that version's lifecycle and waits for approvals under the
 * policy's `rollback:` section; the command waits until it does (or serves, or ends), like promote.
 */
import type { Command } from 'commander';
import { apiClient, modelPath, versionPath } from '../api-client.js';
import { CliError, type CliContext } from '../context.js';
import { printJson } from '../format.js';
import { afterStart, waitFor } from '../wait.js';
import type { LifecycleState } from '../../workflows/definitions.js';
import { parsePositiveInt } from './audit.js';
import { printState } from './lifecycle.js';

export interface RollbackAnswer {
  workflowId: string;
  runId: string;
  started: boolean;
  model: string;
  version: number;
  from: number | null;
  targetSource: 'requested' | 'workflow' | 'mlflow-tags';
  request: { kind: 'rollback'; reason: string };
}

export function registerRollbackCommand(program: Command, ctx: () => CliContext): Command {
  return program
    .command('rollback <model>')
    .description('return an earlier Production version (default: the one the serving version replaced); it then awaits approval')
    .option('--to <version>', 'the version to return to Production', parsePositiveInt)
    .option('--reason <text>', 'why (required; recorded with the request and shown by audit)')
    .option('--token-file <file>', 'your modelgate API token (default: MODELGATE_TOKEN / MODELGATE_TOKEN_FILE)')
    .option('--no-wait', 'return as soon as the rollback run is started')
    .option('--timeout <seconds>', 'how long to wait until it awaits approval', parsePositiveInt, 300)
    .option('--json', 'machine-readable output')
    .action(async (model: string, opts: { to?: number; reason?: string; tokenFile?: string; wait: boolean; timeout: number; json?: boolean }) => {
      // The API answers reason_required too; saying it here spares a round trip and names the flag.
      if (!opts.reason?.trim()) throw new CliError('rollback needs --reason <text> (why the earlier version must serve again)');
      const api = apiClient(ctx().config.cli, opts.tokenFile);
      const { body: r } = await api.post<RollbackAnswer>(`${modelPath(model)}/rollback`, {
        ...(opts.to !== undefined ? { to: opts.to } : {}), reason: opts.reason, via: 'cli',
      });
      if (!opts.json) {
        const from = r.from === null ? 'nothing serving' : `v${r.from} serving`;
        process.stderr.write(`${r.started ? 'started' : 'found running'} rollback of ${model} to v${r.version} (${from}): ${r.workflowId}\n`);
      }
      if (!opts.wait) return opts.json ? printJson(r) : undefined;
      const progress = opts.json ? undefined : (line: string) => void process.stderr.write(`${line}\n`);
      const first = await api.get<LifecycleState>(versionPath(model, r.version));
      const end = await waitFor(api, first, afterStart, { timeoutSec: opts.timeout, progress });
      printState(end.state, !!opts.json);
      if (!end.ok) throw new CliError(end.message);
    });
}
