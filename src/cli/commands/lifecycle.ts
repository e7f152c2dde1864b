/** promote, approve, reject, retire, canary continue|abort, status, list: the lifecycle commands of the `modelgate` CLI. */
import type { Command } from 'commander';
import type { Client } from '@temporalio/client';
import { queryLiteral, toVisibilityRow } from '../../audit/temporal.js';
import type { VisibilityRow } from '../../audit/types.js';
import { getState, ModelgateError } from '../../client.js';
import { apiClient, versionPath, type DecisionAnswer } from '../api-client.js';
import { afterApproval, summary, waitFor } from '../wait.js';
import { MlflowError } from '../../mlflow/errors.js';
import { LIFECYCLE_WORKFLOW, type LifecycleState } from '../../workflows/definitions.js';
import { CliError, type CliContext } from '../context.js';
import { printJson, table } from '../format.js';
import { parsePositiveInt } from './audit.js';

export function parseVersion(raw: string): number {
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new CliError(`version must be a positive integer (got "${raw}")`);
  return Number(raw);
}

export function printState(s: LifecycleState, json: boolean): void {
  if (json) return printJson(s);
  process.stdout.write(`${summary(s)}\n`);
  if (s.evaluation) {
    process.stdout.write(`evaluation: ${s.evaluation.passed ? 'passed' : 'failed'}\n`);
    for (const c of s.evaluation.checks) process.stdout.write(`  ${c.passed ? 'ok  ' : 'FAIL'} ${c.detail}\n`);
  }
  if (s.pullRequest) process.stdout.write(`pull request: ${s.pullRequest.url}${s.pullRequest.mergeSha ? ` (merged ${s.pullRequest.mergeSha.slice(0, 10)})` : ''}\n`);
  process.stdout.write(`${table(['when', 'who', 'what', 'why'], s.timeline.map((t) => [t.at, t.actor, t.action, t.detail]))}\n`);
}

/** Versions that do not exist in MLflow are refused before any workflow is started. */
export async function assertVersionExists(ctx: CliContext, model: string, version: number): Promise<void> {
  try {
    await ctx.mlflow().getModelVersion(model, version);
  } catch (err) {
    if (err instanceof MlflowError && err.errorCode === 'RESOURCE_DOES_NOT_EXIST') {
      throw new CliError(`MLflow (${ctx.mlflowUri}) has no version ${version} of model "${model}"`);
    }
    if (err instanceof MlflowError) throw new CliError(`MLflow (${ctx.mlflowUri}): ${err.message}`);
    throw err;
  }
}

const TERMINAL_OR_WAITING = new Set(['awaiting_approval', 'production', 'done']);

export function registerLifecycleCommands(program: Command, ctx: () => CliContext): void {
  program
    .command('promote <model> <version>')
    .description('start (or find) the lifecycle of a model version; waits until it needs a person or ends')
    .option('--no-wait', 'return as soon as the lifecycle is started')
    .option('--token-file <file>', 'your modelgate API token (default: MODELGATE_TOKEN / MODELGATE_TOKEN_FILE)')
    .option('--timeout <seconds>', 'how long to wait for the evaluation', parsePositiveInt, 300)
    .option('--again', 'promote a version whose lifecycle ended (expired, rejected, archived) anew: a new run; needs --reason')
    .option('--reason <text>', 'why it is promoted again (with --again)')
    .option('--json', 'machine-readable output')
    .action(async (model: string, rawVersion: string, opts: { wait: boolean; timeout: number; json?: boolean; tokenFile?: string; again?: boolean; reason?: string }) => {
      const c = ctx();
      const version = parseVersion(rawVersion);
      if (opts.reason !== undefined && !opts.again) throw new CliError('--reason goes with --again (a re-promotion); a first promotion takes none');
      await assertVersionExists(c, model, version);
      // Through the API: the promotion is attested as requested by the token's identity (a four-eyes registrant).
      const api = apiClient(c.config.cli, opts.tokenFile);
      const again = opts.again ? { again: true, ...(opts.reason !== undefined ? { reason: opts.reason } : {}) } : {};
      const started = (await api.post<{ workflowId: string; started: boolean }>('/v1/promotions', { model, version, source: 'cli', ...again })).body;
      const client = await c.client();
      if (!opts.json) process.stderr.write(`${started.started ? (opts.again ? 'started a new run of' : 'started') : 'found running'} lifecycle ${started.workflowId}\n`);
      if (!opts.wait) return opts.json ? printJson(started) : undefined;
      const deadline = Date.now() + opts.timeout * 1000;
      let last = '';
      for (;;) {
        const s = await getState(client, model, version);
        const line = summary(s);
        if (line !== last && !opts.json) process.stderr.write(`  … ${line}\n`);
        last = line;
        if (TERMINAL_OR_WAITING.has(s.phase)) {
          // A plain promote of a version whose lifecycle ended finds that run: say how to promote it anew.
          if (s.phase === 'done' && !started.started && !opts.again && !opts.json) {
            process.stderr.write(`its lifecycle ended (${s.outcome ?? 'done'}); to promote it anew: modelgate promote ${model} ${version} --again --reason <text>\n`);
          }
          return printState(s, !!opts.json);
        }
        if (Date.now() > deadline) throw new CliError(`${model} v${version} is still ${s.phase.replace(/_/g, ' ')} after ${opts.timeout}s (it goes on; check \`modelgate status ${model} ${version}\`)`);
        await new Promise((r) => setTimeout(r, 500));
      }
    });

  const decision = (kind: 'approve' | 'reject' | 'retire' | 'canary/continue' | 'canary/abort', model: string, rawVersion: string, body: Record<string, unknown>, opts: { json?: boolean; tokenFile?: string }) => {
    const c = ctx();
    const version = parseVersion(rawVersion);
    return apiClient(c.config.cli, opts.tokenFile)
      .post<DecisionAnswer>(`${versionPath(model, version)}/${kind}`, { ...body, via: 'cli' })
      .then(({ body: answer }) => {
        if (answer.already && !opts.json) process.stderr.write(`${answer.message}\n`);
        printState(answer.state, !!opts.json);
      });
  };
  const TOKEN_FILE = ['--token-file <file>', 'your modelgate API token (default: MODELGATE_TOKEN / MODELGATE_TOKEN_FILE)'] as const;

  program
    .command('approve <model> <version>')
    .description('approve a Staging version for Production (as the identity of your API token); waits until it serves, waits again, or ends')
    .option('--comment <text>', 'why')
    .option(...TOKEN_FILE)
    .option('--no-wait', 'return as soon as the approval is recorded')
    .option('--timeout <seconds>', 'how long to wait for the deployment', parsePositiveInt, 600)
    .option('--json', 'machine-readable output')
    .action(async (model: string, rawVersion: string, opts: { comment?: string; json?: boolean; tokenFile?: string; wait: boolean; timeout: number }) => {
      const c = ctx();
      const version = parseVersion(rawVersion);
      const api = apiClient(c.config.cli, opts.tokenFile);
      const { body: answer } = await api.post<DecisionAnswer>(`${versionPath(model, version)}/approve`, { ...(opts.comment ? { comment: opts.comment } : {}), via: 'cli' });
      if (answer.already && !opts.json) process.stderr.write(`${answer.message}\n`);
      if (!opts.wait) return printState(answer.state, !!opts.json);
      const progress = opts.json ? undefined : (line: string) => void process.stderr.write(`${line}\n`);
      const end = await waitFor(api, answer.state, (s, left) => afterApproval(answer.state, s, left), { timeoutSec: opts.timeout, progress });
      printState(end.state, !!opts.json);
      if (!end.ok) throw new CliError(end.message);
      if (!opts.json) process.stderr.write(`${end.message}\n`);
    });

  program
    .command('reject <model> <version>')
    .description('reject a Staging version (as the identity of your API token)')
    .requiredOption('--reason <text>', 'why it must not go to Production')
    .option(...TOKEN_FILE)
    .option('--json', 'machine-readable output')
    .action((model: string, rawVersion: string, opts: { reason: string; json?: boolean; tokenFile?: string }) =>
      decision('reject', model, rawVersion, { reason: opts.reason }, opts),
    );

  program
    .command('retire <model> <version>')
    .description('take a Production version out of Production (archives it; the model then has none)')
    .option('--reason <text>', 'why')
    .option(...TOKEN_FILE)
    .option('--json', 'machine-readable output')
    .action((model: string, rawVersion: string, opts: { reason?: string; json?: boolean; tokenFile?: string }) =>
      decision('retire', model, rawVersion, opts.reason ? { reason: opts.reason } : {}, opts),
    );

  const canary = program.command('canary').description('decide on a paused (inconclusive) canary of a version');
  canary
    .command('continue <model> <version>')
    .description("run the paused step's analysis again (as the identity of your API token; approve scope, four-eyes)")
    .option('--comment <text>', 'why')
    .option(...TOKEN_FILE)
    .option('--json', 'machine-readable output')
    .action((model: string, rawVersion: string, opts: { comment?: string; json?: boolean; tokenFile?: string }) =>
      decision('canary/continue', model, rawVersion, opts.comment ? { comment: opts.comment } : {}, opts),
    );
  canary
    .command('abort <model> <version>')
    .description('roll the paused canary back to the previous version (canaryTrafficPercent 0)')
    .requiredOption('--reason <text>', 'why it must not get more traffic')
    .option(...TOKEN_FILE)
    .option('--json', 'machine-readable output')
    .action((model: string, rawVersion: string, opts: { reason: string; json?: boolean; tokenFile?: string }) =>
      decision('canary/abort', model, rawVersion, { reason: opts.reason }, opts),
    );

  program
    .command('status <model> [version]')
    .description("a version's lifecycle, or every lifecycle of a model")
    .option('--json', 'machine-readable output')
    .action(async (model: string, rawVersion: string | undefined, opts: { json?: boolean }) => {
      const c = ctx();
      const client = await c.client();
      if (rawVersion !== undefined) return printState(await getState(client, model, parseVersion(rawVersion)), !!opts.json);
      const rows = await listLifecycles(client, { model });
      if (!rows.length) throw new CliError(`no lifecycles for model "${model}"`);
      printRows(rows, !!opts.json);
    });

  program
    .command('list')
    .description('lifecycles, newest first')
    .option('--model <name>', 'only this model')
    .option('--stage <stage>', 'only this stage (None, Staging, Production, Archived)')
    .option('--limit <n>', 'at most this many', parsePositiveInt, 50)
    .option('--json', 'machine-readable output')
    .action(async (opts: { model?: string; stage?: string; limit: number; json?: boolean }) => {
      const stages = ['None', 'Staging', 'Production', 'Archived'];
      if (opts.stage && !stages.includes(opts.stage)) throw new CliError(`--stage must be one of ${stages.join(', ')} (got "${opts.stage}")`);
      const rows = await listLifecycles(await ctx().client(), { model: opts.model, stage: opts.stage, limit: opts.limit });
      printRows(rows, !!opts.json);
    });
}

/** Lifecycles from Temporal visibility, newest first, decoded by the audit module's typed search attributes. */
export async function listLifecycles(client: Client, f: { model?: string; stage?: string; limit?: number }): Promise<VisibilityRow[]> {
  const clauses = [`WorkflowType = '${LIFECYCLE_WORKFLOW}'`];
  if (f.model) clauses.push(`ModelName = ${queryLiteral(f.model, 'model')}`);
  if (f.stage) clauses.push(`ModelStage = ${queryLiteral(f.stage, 'stage')}`);
  const rows: VisibilityRow[] = [];
  for await (const wf of client.workflow.list({ query: clauses.join(' AND ') })) {
    rows.push(toVisibilityRow(wf));
    if (rows.length >= (f.limit ?? 1000)) break;
  }
  return rows;
}

function printRows(rows: VisibilityRow[], json: boolean): void {
  if (json) return printJson(rows);
  process.stdout.write(
    `${table(
      ['model', 'version', 'stage', 'outcome', 'approvers', 'status', 'started'],
      rows.map((r) => [r.model, r.version, r.stage, r.outcome, r.approvers.join(','), r.status, r.startTime]),
    )}\n`,
  );
}

export { ModelgateError };
