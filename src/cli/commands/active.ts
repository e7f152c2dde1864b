/**
 * `modelgate active <model> [--json]`: what inference gateways are told serves — the API's
 * GET /v1/models/:model/active, verbatim with --json. The route takes no credential, so neither does this.
 */
import type { Command } from 'commander';
import type { ActiveVersion } from '../../active/types.js';
import { ApiError, apiClient, modelPath } from '../api-client.js';
import { CliError, type CliContext } from '../context.js';
import { printJson } from '../format.js';

export function renderActive(a: ActiveVersion): string {
  const orDash = (v: string | null | undefined) => (v ? v : '-');
  const pairs: Array<[string, string]> = [
    ['version', `${a.version}${a.stale ? ' (stale: MLflow unreachable, last value read)' : ''}`],
    ['stage / aliases', `${a.stage} / ${a.aliases.join(', ') || '-'}`],
    ['storage URI', orDash(a.storageUri)],
    ['run', orDash(a.runId)],
    ['approved by', a.approvedBy.join(', ') || '-'],
    ['approved at', orDash(a.approvedAt)],
    ['promoted at', orDash(a.promotedAt)],
    ['pull request', `${orDash(a.pullRequest)}${a.mergeSha ? ` (merged ${a.mergeSha.slice(0, 12)})` : ''}`],
    ['lifecycle', orDash(a.workflowId)],
    ...Object.entries(a.metrics).map(([k, v]): [string, string] => [`metric ${k}`, String(v)]),
  ];
  const w = Math.max(...pairs.map(([k]) => k.length));
  return [`${a.model}: version ${a.version} is active`, ...pairs.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`)].join('\n');
}

export function registerActiveCommand(program: Command, ctx: () => CliContext): Command {
  return program
    .command('active <model>')
    .description('the version gateways are told to serve (GET /v1/models/<model>/active on the API)')
    .option('--json', 'the endpoint\'s answer as is')
    .action(async (model: string, opts: { json?: boolean }) => {
      if (!model.trim() || model.length > 256) throw new CliError('model name must be a non-empty string of at most 256 characters');
      const c = ctx();
      let a: ActiveVersion;
      try {
        a = await apiClient(c.config.cli).getPublic<ActiveVersion>(`${modelPath(model)}/active`);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404 && err.code === 'not_found') {
          throw new CliError(`the modelgate API at ${c.config.cli.apiUrl} does not serve the active-version endpoint (it needs MLFLOW_TRACKING_URI)`);
        }
        throw err;
      }
      if (opts.json) return printJson(a);
      process.stdout.write(`${renderActive(a)}\n`);
    });
}
