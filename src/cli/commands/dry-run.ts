/**
 * `modelgate dry-run <model> <version> [--policy <file>] [--json]`: what promoting the version now would do,
 * as the API's POST …/dry-run computes it for your token's identity. `--policy` sends a policy file that is not
 * deployed yet (its text; the API validates it and uses it for this answer only). Nothing is started or written.
 */
import { readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { MAX_POLICY_BYTES } from '../../dryrun/compute.js';
import { renderDryRun } from '../../dryrun/format.js';
import type { DryRunReport } from '../../dryrun/types.js';
import { apiClient, versionPath } from '../api-client.js';
import { CliError, type CliContext } from '../context.js';
import { printJson } from '../format.js';
import { parseVersion } from './lifecycle.js';

/** The file's text, refused here with a one-line reason before anything is sent. */
export function readPolicyText(file: string): string {
  let text: string;
  try {
    if (statSync(file).size > MAX_POLICY_BYTES) throw new CliError(`--policy ${file}: larger than ${MAX_POLICY_BYTES} bytes`);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof CliError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(`--policy ${file}: cannot read it (${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (code ?? 'error')})`);
  }
  if (!text.trim()) throw new CliError(`--policy ${file}: the file is empty`);
  return text;
}

export function registerDryRunCommand(program: Command, ctx: () => CliContext): Command {
  return program
    .command('dry-run <model> <version>')
    .description('what would happen if this version were promoted now (evaluation, approvers, four-eyes, PR diff, rollout); changes nothing')
    .option('--policy <file>', 'try a policy file that is not deployed yet (used for this report only)')
    .option('--token-file <file>', 'your modelgate API token (default: MODELGATE_TOKEN / MODELGATE_TOKEN_FILE)')
    .option('--json', 'the API\'s report as is')
    .action(async (model: string, rawVersion: string, opts: { policy?: string; tokenFile?: string; json?: boolean }) => {
      if (!model.trim() || model.length > 256) throw new CliError('model name must be a non-empty string of at most 256 characters');
      const version = parseVersion(rawVersion);
      const policyYaml = opts.policy !== undefined ? readPolicyText(opts.policy) : undefined;
      const c = ctx();
      const report = (await apiClient(c.config.cli, opts.tokenFile).post<DryRunReport>(`${versionPath(model, version)}/dry-run`, policyYaml !== undefined ? { policyYaml } : {})).body;
      if (opts.json) return printJson(report);
      process.stdout.write(`${renderDryRun(report)}\n`);
    });
}
