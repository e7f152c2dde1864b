/**
 * The `modelgate` CLI as a person uses it: the real program in a child process against the real Temporal and
 * MLflow servers. Every mistake ends in one line on stderr and a non-zero exit code, never a stack trace.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { parsePolicy } from '../src/policy/load.js';
import type { MlflowClient } from '../src/mlflow/client.js';
import { PROJECT_ROOT } from '../src/stack/embedded.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';
import { registerTrainedVersion, testMlflow } from './support/fixtures.js';
import { startTestWorker, type RunningWorker } from './support/worker.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import { buildServer, type ApiServer } from '../src/api/server.js';
import { loadApiConfig } from '../src/config/api.js';
import { createLogger } from '../src/observability/log.js';
import { testApiEnv } from './support/identity.js';

const TOKENS = { alice: 'tok-cli-alice-0123456789', dana: 'tok-cli-dana-0123456789', mallory: 'tok-cli-mallory-0123456789' };

const CLI = join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** What `modelgate status --json` and `promote --json` print, as far as these tests read it. */
interface StatusJson {
  phase: string;
  stage?: string;
  approvals: unknown[];
}

describe('modelgate CLI', () => {
  let env: TestWorkflowEnvironment;
  let mlflow: MlflowClient;
  let worker: RunningWorker;
  let api: ApiServer;
  let apiUrl: string;
  const tokenFiles: Record<string, string> = {};
  const as = (who: string) => ({ MODELGATE_TOKEN_FILE: tokenFiles[who] });

  before(async () => {
    env = await connectTestEnv();
    mlflow = testMlflow(testStack().mlflowUri);
    const set = parsePolicy(
      `defaults:
  evaluation: { thresholds: ["accuracy >= 0.9"], requiredTags: [], noRegression: [] }
  approval: { approvers: [alice, bob, dana], fourEyes: true, quorum: 1, expiresAfter: 1h }
  deployment: { mode: registry }
`,
      'cli-test.yaml',
    );
    worker = await startTestWorker(env, { mlflow, policies: { policyFor: (m) => ({ ...set.policyFor(m), model: m }) } });
    api = buildServer({
      client: env.client,
      config: loadApiConfig(testApiEnv({ MODELGATE_API_TOKENS: Object.entries(TOKENS).map(([who, t]) => `${t}=${who}`).join(',') })),
      logger: createLogger('silent'),
      taskQueue: worker.taskQueue,
    });
    await api.listen({ host: '127.0.0.1', port: 0 });
    apiUrl = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
    const dir = mkdtempSync(join(tmpdir(), 'modelgate-cli-'));
    for (const [who, t] of Object.entries(TOKENS)) {
      tokenFiles[who] = join(dir, who);
      writeFileSync(tokenFiles[who], `${t}\n`, { mode: 0o600 });
    }
  });

  after(async () => {
    await api?.close();
    await worker?.stop();
    await mlflow?.close();
    await env?.teardown();
  });

  function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<Ran> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [CLI, ...args],
        {
          env: {
            ...process.env,
            TEMPORAL_ADDRESS: testStack().temporalAddress,
            MLFLOW_TRACKING_URI: testStack().mlflowUri,
            MODELGATE_TASK_QUEUE: worker.taskQueue,
            MODELGATE_API_URL: apiUrl,
            ...extraEnv,
          },
          timeout: 120_000,
        },
        (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
      );
    });
  }

  function oneLineError(r: Ran, pattern: RegExp): void {
    assert.notEqual(r.code, 0);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
    assert.match(lines[0], pattern);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }

  it('when a version is promoted and approved through the CLI, then status shows it in Production', async () => {
    const model = unique('cli-happy');
    const v = await registerTrainedVersion(mlflow, model, { user: 'dana' });
    const promoted = await cli(['promote', model, String(v.version), '--json'], as('dana'));
    assert.equal(promoted.code, 0, promoted.stderr);
    assert.equal((JSON.parse(promoted.stdout) as StatusJson).phase, 'awaiting_approval');
    // dana asked for the promotion (her token): four-eyes keeps her from approving it.
    oneLineError(await cli(['approve', model, String(v.version)], as('dana')), /dana registered .* and may not approve it \(four-eyes/);
    const approved = await cli(['approve', model, String(v.version), '--comment', 'fine', '--token-file', tokenFiles.alice]);
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stdout, /approved by alice/);
    let status: Ran;
    do status = await cli(['status', model, String(v.version), '--json']);
    while ((JSON.parse(status.stdout) as StatusJson).phase !== 'production');
    assert.equal((JSON.parse(status.stdout) as StatusJson).stage, 'Production');
    const listed = await cli(['list', '--model', model, '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const rows = JSON.parse(listed.stdout) as Array<{ version: number }>;
    assert.deepEqual(rows.map((r) => r.version), [v.version]);
  });

  it('when the version does not exist in MLflow, then promote refuses in one line naming it', async () => {
    const model = unique('cli-ghost');
    await registerTrainedVersion(mlflow, model);
    oneLineError(await cli(['promote', model, '42'], as('dana')), new RegExp(`no version 42 of model "${model}"`));
  });

  it('when the version is not a positive integer, then one line says so', async () => {
    oneLineError(await cli(['approve', 'm', 'latest'], as('alice')), /version must be a positive integer \(got "latest"\)/);
  });

  it('when an unauthorized person approves, then one line names them and nothing changes', async () => {
    const model = unique('cli-unauth');
    const v = await registerTrainedVersion(mlflow, model, { user: 'dana' });
    assert.equal((await cli(['promote', model, String(v.version)], as('dana'))).code, 0);
    oneLineError(await cli(['approve', model, String(v.version)], as('mallory')), /mallory may not approve/);
    const status = JSON.parse((await cli(['status', model, String(v.version), '--json'])).stdout) as StatusJson;
    assert.equal(status.approvals.length, 0);
  });

  it('when approving a version that has no lifecycle, then one line says how to start it', async () => {
    oneLineError(await cli(['approve', unique('cli-none'), '3'], as('alice')), /no lifecycle for .* version 3 \(start it with/);
  });

  it('when the configuration is invalid, then one line names the key and the reason', async () => {
    oneLineError(await cli(['list'], { MODELGATE_API_PORT: '70000' }), /MODELGATE_API_PORT: .*70000/);
    oneLineError(await cli(['list'], { TEMPORAL_ADDRESS: 'not an address' }), /TEMPORAL_ADDRESS: expected host:port/);
  });

  it('when a numeric option is not a positive integer, then one line names the option and nothing is started', async () => {
    oneLineError(await cli(['promote', unique('cli-bad-timeout'), '1', '--timeout', 'abc']), /--timeout <seconds>.*expected a positive integer \(got "abc"\)/);
    oneLineError(await cli(['list', '--limit', '0']), /--limit <n>.*expected a positive integer \(got "0"\)/);
  });

  it('when a required option is missing, then commander says which and exits non-zero', async () => {
    const r = await cli(['reject', 'm', '1'], as('alice'));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /required option '--reason <text>' not specified/);
  });

  it('when approve is run without a token, or with --as, then it is refused and names what is missing', async () => {
    const model = unique('cli-notoken');
    const v = await registerTrainedVersion(mlflow, model);
    assert.equal((await cli(['promote', model, String(v.version)], as('dana'))).code, 0);
    oneLineError(await cli(['approve', model, String(v.version)]), /needs your modelgate API token: set MODELGATE_TOKEN/);
    const flagged = await cli(['approve', model, String(v.version), '--as', 'alice']);
    assert.notEqual(flagged.code, 0);
    assert.match(flagged.stderr, /unknown option '--as'/);
    oneLineError(await cli(['approve', model, String(v.version)], { MODELGATE_TOKEN: 'tok-not-a-real-token-000' }), /unknown API token/);
    const status = JSON.parse((await cli(['status', model, String(v.version), '--json'])).stdout) as StatusJson;
    assert.equal(status.approvals.length, 0);
  });

  it('when --stage is not a stage, then one line lists the valid ones', async () => {
    oneLineError(await cli(['list', '--stage', 'Prod']), /--stage must be one of None, Staging, Production, Archived/);
  });
});
