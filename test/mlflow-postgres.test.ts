/**
 * MlflowClient against a second real MLflow server whose backend store is PostgreSQL (the production setup),
 * in a fresh database created here and dropped afterwards.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MlflowClient } from '../src/mlflow/client.js';
import { startMlflow, type MlflowServer } from '../src/stack/embedded.js';
import { testStack, unique } from './support/stack.js';

const run = promisify(execFile);

async function psql(sql: string): Promise<void> {
  await run('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-v', 'ON_ERROR_STOP=1', '-X', '-q', '-c', sql], { timeout: 30_000 });
}

describe('MlflowClient against MLflow with a PostgreSQL backend store', () => {
  // Unquoted identifiers must be lower case; unique() gives hex.
  const database = unique('modelgate_mlflow').replace(/-/g, '_').toLowerCase();
  let server: MlflowServer | undefined;
  let client: MlflowClient | undefined;
  let dbCreated = false;

  before(async () => {
    await psql(`CREATE DATABASE ${database}`);
    dbCreated = true;
    server = await startMlflow({
      dataDir: join(testStack().dataDir, database),
      // SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; the venv has psycopg2.
      backendStoreUri: `postgresql+psycopg2://postgres@127.0.0.1:5432/${database}`,
    });
    client = new MlflowClient({ trackingUri: server.url, timeoutMs: 15_000 });
  });

  after(async () => {
    await client?.close();
    await server?.process.stop();
    // FORCE: a pool connection the server leaves behind must not keep the database alive.
    if (dbCreated) await psql(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  });

  test('when a version goes through create → Staging → alias → tag, then every step reads back from Postgres', async () => {
    const c = client!;
    assert.equal(server!.backendStoreUri.startsWith('postgresql'), true);
    const name = unique('mg-pg-model');
    await c.createRegisteredModel(name, { tags: { store: 'postgres' } });
    const experimentId = await c.getOrCreateExperiment(unique('mg-pg'));
    const runInfo = await c.createRun(experimentId, { runName: 'train' });
    await c.logBatch(runInfo.run_id, { metrics: { auc: 0.93 }, params: { depth: '4' } });
    await c.finishRun(runInfo.run_id);

    const created = await c.createModelVersion({ name, source: `runs:/${runInfo.run_id}/model`, runId: runInfo.run_id });
    assert.equal(created.version, 1);
    const deadline = Date.now() + 15_000;
    while ((await c.getModelVersion(name, 1)).status !== 'READY') {
      assert.ok(Date.now() < deadline, 'version not READY in time');
      await new Promise((r) => setTimeout(r, 100));
    }

    const staged = await c.transitionStage(name, 1, 'Staging');
    assert.equal(staged.current_stage, 'Staging');
    assert.deepEqual((await c.getLatestVersions(name, ['Staging'])).map((v) => v.version), [1]);

    await c.setAlias(name, 'candidate', 1);
    const byAlias = await c.getVersionByAlias(name, 'candidate');
    assert.equal(byAlias?.version, 1);
    assert.equal(byAlias?.current_stage, 'Staging');
    assert.equal(await c.getVersionByAlias(name, 'champion'), null);

    await c.setVersionTag(name, 1, 'modelgate.phase', 'evaluating');
    const tagged = await c.getModelVersion(name, 1);
    assert.equal(tagged.tags['modelgate.phase'], 'evaluating');
    assert.deepEqual(tagged.aliases, ['candidate']);

    await c.deleteVersionTag(name, 1, 'modelgate.phase');
    await c.deleteAlias(name, 'candidate');
    const final = await c.getModelVersion(name, 1);
    assert.equal(final.tags['modelgate.phase'], undefined);
    assert.deepEqual(final.aliases, []);

    const found = await c.searchModelVersions({ filter: `name='${name}'` });
    assert.deepEqual(found.items.map((v) => [v.version, v.current_stage]), [[1, 'Staging']]);
    const runBack = await c.getRun(runInfo.run_id);
    assert.equal(runBack.metrics.auc, 0.93);
    assert.equal(await c.getDownloadUri(name, 1), `${runBack.artifact_uri}/model`);
  });
});
