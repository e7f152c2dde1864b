/**
 * MlflowClient against the real MLflow server started by run-tests, plus a tiny local HTTP server standing in for
 * proxies and misbehaving servers (auth headers, 5xx/non-JSON answers, hangs, wrong shapes).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { ApplicationFailure } from '@temporalio/common';
import { MlflowClient } from '../src/mlflow/client.js';
import { MlflowError, MlflowSchemaError, toActivityError } from '../src/mlflow/errors.js';
import type { ModelVersion } from '../src/mlflow/types.js';
import { freePort } from '../src/stack/processes.js';
import { testStack, unique } from './support/stack.js';
import { eventually } from './support/wait.js';


async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.fail('expected the call to fail');
}

async function mlflowError(p: Promise<unknown>): Promise<MlflowError> {
  const err = await rejection(p);
  assert.ok(err instanceof MlflowError, `expected MlflowError, got ${String(err)}`);
  return err;
}

describe('MlflowClient against the real MLflow server', () => {
  const stack = testStack();
  const client = new MlflowClient({ trackingUri: stack.mlflowUri, timeoutMs: 15_000 });
  let experimentId: string;

  before(async () => {
    experimentId = await client.getOrCreateExperiment(unique('mg-client'));
  });
  after(async () => {
    await client.close();
  });

  async function newRun(): Promise<string> {
    const run = await client.createRun(experimentId, { runName: unique('run') });
    await client.finishRun(run.run_id);
    return run.run_id;
  }

  async function ready(name: string, version: number): Promise<ModelVersion> {
    return eventually(`version ${name}/${version} READY`, async () => {
      const mv = await client.getModelVersion(name, version);
      assert.notEqual(mv.status, 'FAILED_REGISTRATION', mv.status_message);
      return mv.status === 'READY' ? mv : undefined;
    });
  }

  test('when the experiment already exists, then getOrCreateExperiment returns its id', async () => {
    const name = unique('mg-exp');
    const first = await client.getOrCreateExperiment(name);
    assert.match(first, /^\d+$/);
    assert.equal(await client.getOrCreateExperiment(name), first);
  });

  test('when a run logs metrics, params and tags, then getRun returns them as records', async () => {
    const started = Date.now() - 5_000;
    const run = await client.createRun(experimentId, { runName: 'train', startTime: started, tags: { team: 'fraud' } });
    assert.equal(run.status, 'RUNNING');
    assert.equal(run.experiment_id, experimentId);
    await client.logBatch(run.run_id, {
      metrics: { accuracy: 0.91, loss: 0.2, weird: Number.NaN },
      params: { lr: '0.01', depth: '6' },
      tags: { stage: 'candidate' },
    });
    await client.finishRun(run.run_id);

    const got = await client.getRun(run.run_id);
    assert.equal(got.run_id, run.run_id);
    assert.equal(got.status, 'FINISHED');
    assert.equal(got.run_name, 'train');
    assert.equal(got.start_time, started);
    assert.ok(got.end_time && got.end_time >= started);
    assert.match(got.artifact_uri ?? '', /\S/);
    assert.equal(got.metrics.accuracy, 0.91);
    assert.equal(got.metrics.loss, 0.2);
    assert.ok(Number.isNaN(got.metrics.weird));
    assert.deepEqual(got.params, { lr: '0.01', depth: '6' });
    assert.equal(got.tags.team, 'fraud');
    assert.equal(got.tags.stage, 'candidate');
  });

  test('when more params are logged than one log-batch request allows, then all of them arrive', async () => {
    const run = await client.createRun(experimentId);
    const params = Object.fromEntries(Array.from({ length: 230 }, (_, i) => [`p${i}`, String(i)]));
    await client.logBatch(run.run_id, { params, metrics: { m: 1 } });
    const got = await client.getRun(run.run_id);
    assert.equal(Object.keys(got.params).length, 230);
    assert.equal(got.params.p229, '229');
  });

  test('when a version is registered from runs:/<run>/model, then it becomes READY and the download URI is the run artifact location', async () => {
    const name = unique('mg-model');
    const created = await client.createRegisteredModel(name, { description: 'fraud scorer', tags: { owner: 'risk' } });
    assert.equal(created.name, name);
    assert.deepEqual(created.tags, { owner: 'risk' });
    const runId = await newRun();
    const mv = await client.createModelVersion({ name, source: `runs:/${runId}/model`, runId, tags: { origin: 'ci' } });
    assert.equal(mv.version, 1);
    assert.equal(typeof mv.version, 'number');
    assert.equal(mv.current_stage, 'None');
    assert.equal(mv.run_id, runId);
    assert.deepEqual(mv.tags, { origin: 'ci' });
    const readyVersion = await ready(name, 1);
    assert.equal(readyVersion.source, `runs:/${runId}/model`);

    const run = await client.getRun(runId);
    const uri = await client.getDownloadUri(name, 1);
    assert.equal(uri, `${run.artifact_uri}/model`);
    assert.doesNotMatch(uri, /^(runs|models):/);

    const model = await client.getRegisteredModel(name);
    assert.equal(model.description, 'fraud scorer');
    assert.deepEqual(model.latest_versions.map((v) => v.version), [1]);
  });

  test('when a version is registered from an MLflow 3 models:/m-<id> source, then MLflow accepts it and the download URI is physical', async () => {
    const name = unique('mg-model');
    await client.createRegisteredModel(name);
    const runId = await newRun();
    const logged = await client.createLoggedModel(experimentId, { name: 'model', sourceRunId: runId });
    assert.match(logged.modelId, /^m-/);
    const mv = await client.createModelVersion({ name, source: `models:/${logged.modelId}` });
    assert.equal(mv.source, `models:/${logged.modelId}`);
    await ready(name, mv.version);
    const uri = await client.getDownloadUri(name, mv.version);
    assert.equal(uri, logged.artifactUri);
    assert.doesNotMatch(uri, /^(runs|models):/);
  });

  test('when stages are transitioned, then other versions keep their stage (archive_existing_versions is never set)', async () => {
    const name = unique('mg-model');
    await client.createRegisteredModel(name);
    const runId = await newRun();
    for (let i = 0; i < 2; i++) await client.createModelVersion({ name, source: `runs:/${runId}/model`, runId });
    await ready(name, 2);

    assert.equal((await client.transitionStage(name, 1, 'Staging')).current_stage, 'Staging');
    assert.equal((await client.transitionStage(name, 1, 'Production')).current_stage, 'Production');
    const second = await client.transitionStage(name, 2, 'Production');
    assert.equal(second.current_stage, 'Production');
    assert.equal(second.version, 2);
    assert.equal((await client.getModelVersion(name, 1)).current_stage, 'Production');

    const latestProd = await client.getLatestVersions(name, ['Production']);
    assert.deepEqual(latestProd.map((v) => v.version), [2]);
    assert.equal((await client.transitionStage(name, 1, 'Archived')).current_stage, 'Archived');
    const latest = await client.getLatestVersions(name, ['Production', 'Archived']);
    assert.deepEqual(latest.map((v) => [v.version, v.current_stage]).sort(), [[1, 'Archived'], [2, 'Production']]);
    assert.equal((await client.getLatestVersions(name, ['Staging'])).length, 0);
  });

  test('when aliases are set and deleted, then get-by-alias follows, and a missing alias reads as null', async () => {
    const name = unique('mg-model');
    await client.createRegisteredModel(name);
    const runId = await newRun();
    for (let i = 0; i < 2; i++) await client.createModelVersion({ name, source: `runs:/${runId}/model`, runId });

    assert.equal(await client.getVersionByAlias(name, 'champion'), null);
    await client.setAlias(name, 'champion', 1);
    await client.setAlias(name, 'challenger', 2);
    const champ = await client.getVersionByAlias(name, 'champion');
    assert.equal(champ?.version, 1);
    assert.deepEqual(champ?.aliases, ['champion']);
    const model = await client.getRegisteredModel(name);
    assert.deepEqual(
      [...model.aliases].sort((a, b) => a.alias.localeCompare(b.alias)),
      [{ alias: 'challenger', version: 2 }, { alias: 'champion', version: 1 }],
    );

    await client.setAlias(name, 'champion', 2);
    assert.equal((await client.getVersionByAlias(name, 'champion'))?.version, 2);
    await client.deleteAlias(name, 'champion');
    assert.equal(await client.getVersionByAlias(name, 'champion'), null);
    // Idempotent: deleting again is fine.
    await client.deleteAlias(name, 'champion');

    const missingModel = await mlflowError(client.getVersionByAlias(unique('no-such-model'), 'champion'));
    assert.equal(missingModel.errorCode, 'RESOURCE_DOES_NOT_EXIST');
    const missingVersion = await mlflowError(client.setAlias(name, 'champion', 99));
    assert.equal(missingVersion.errorCode, 'RESOURCE_DOES_NOT_EXIST');
  });

  test('when a version tag is set and deleted, then the version shows it and then does not', async () => {
    const name = unique('mg-model');
    await client.createRegisteredModel(name);
    const runId = await newRun();
    await client.createModelVersion({ name, source: `runs:/${runId}/model`, runId });
    await client.setVersionTag(name, 1, 'modelgate.phase', 'evaluating');
    assert.equal((await client.getModelVersion(name, 1)).tags['modelgate.phase'], 'evaluating');
    await client.setVersionTag(name, 1, 'modelgate.phase', 'approved');
    assert.equal((await client.getModelVersion(name, 1)).tags['modelgate.phase'], 'approved');
    await client.deleteVersionTag(name, 1, 'modelgate.phase');
    assert.equal((await client.getModelVersion(name, 1)).tags['modelgate.phase'], undefined);
    await client.deleteVersionTag(name, 1, 'modelgate.phase');
  });

  test('when versions are searched with a filter and a small page size, then pages chain to all matches', async () => {
    const name = unique('mg-model');
    await client.createRegisteredModel(name);
    const runId = await newRun();
    for (let i = 0; i < 5; i++) {
      await client.createModelVersion({ name, source: `runs:/${runId}/model`, runId, tags: { parity: i % 2 ? 'odd' : 'even' } });
    }
    const seen: number[] = [];
    let pageToken: string | undefined;
    let pages = 0;
    do {
      const page = await client.searchModelVersions({ filter: `name='${name}'`, maxResults: 2, orderBy: ['version_number ASC'], pageToken });
      assert.ok(page.items.length <= 2);
      seen.push(...page.items.map((v) => v.version));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken && pages < 10);
    assert.deepEqual(seen, [1, 2, 3, 4, 5]);
    assert.equal(pages, 3);

    const even = await client.searchModelVersions({ filter: `name='${name}' and tag.parity='even'`, orderBy: ['version_number DESC'] });
    assert.deepEqual(even.items.map((v) => v.version), [5, 3, 1]);
    assert.equal(even.nextPageToken, undefined);
  });

  test('when the model does not exist, then the error is RESOURCE_DOES_NOT_EXIST, permanent, and maps to MlflowNotFound', async () => {
    const missing = unique('no-such-model');
    const err = await mlflowError(client.getRegisteredModel(missing));
    assert.equal(err.status, 404);
    assert.equal(err.errorCode, 'RESOURCE_DOES_NOT_EXIST');
    assert.equal(err.endpoint, 'registered-models/get');
    assert.equal(err.retryable, false);
    const failure = toActivityError(err);
    assert.ok(failure instanceof ApplicationFailure);
    assert.equal(failure.type, 'MlflowNotFound');
    assert.equal(failure.nonRetryable, true);
    assert.match(failure.message, new RegExp(`^registered-models/get: .*${missing}`));
    assert.doesNotMatch(failure.message, /\n/);

    const versionErr = await mlflowError(client.getModelVersion(missing, 1));
    assert.equal(versionErr.errorCode, 'RESOURCE_DOES_NOT_EXIST');
    assert.equal((toActivityError(versionErr) as ApplicationFailure).type, 'MlflowNotFound');
  });

  test('when a request is invalid or a model already exists, then it maps to a non-retryable MlflowInvalid', async () => {
    const name = unique('mg-model');
    await client.createRegisteredModel(name);
    const dup = await mlflowError(client.createRegisteredModel(name));
    assert.equal(dup.errorCode, 'RESOURCE_ALREADY_EXISTS');
    assert.equal(dup.status, 400);
    assert.equal(dup.retryable, false);
    assert.equal((toActivityError(dup) as ApplicationFailure).type, 'MlflowInvalid');

    const badStage = await mlflowError(client.transitionStage(name, 1, 'Bogus' as never));
    assert.equal(badStage.errorCode, 'INVALID_PARAMETER_VALUE');
    assert.equal(badStage.retryable, false);
    assert.equal((toActivityError(badStage) as ApplicationFailure).type, 'MlflowInvalid');

    const badVersion = await mlflowError(client.getModelVersion(name, 0));
    assert.equal(badVersion.errorCode, 'INVALID_PARAMETER_VALUE');
    assert.equal((toActivityError(badVersion) as ApplicationFailure).type, 'MlflowInvalid');
  });
});

// ---------------------------------------------------------------- local stand-in server

interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

type Handler = (res: ServerResponse, req: Recorded) => void;

const versionJson = { name: 'm', version: '3', creation_timestamp: 1, current_stage: 'None', source: 's3://b/m', status: 'READY' };

describe('MlflowClient against a stand-in HTTP server', () => {
  const recorded: Recorded[] = [];
  const routes = new Map<string, Handler>();
  let server: Server;
  let base: string;
  const clients: MlflowClient[] = [];

  function clientWith(opts: Partial<ConstructorParameters<typeof MlflowClient>[0]> = {}): MlflowClient {
    const c = new MlflowClient({ trackingUri: base, timeoutMs: 5_000, ...opts });
    clients.push(c);
    return c;
  }

  function lastRequest(model: string): Recorded | undefined {
    return recorded.filter((r) => r.url.includes(`name=${model}&`)).pop();
  }

  /** Each test serves its own model name so tests never see each other's routes. */
  function serve(model: string, handler: Handler): void {
    routes.set(model, handler);
  }

  before(async () => {
    server = createServer((req, res) => {
      const rec = { method: req.method ?? '', url: req.url ?? '', headers: req.headers };
      recorded.push(rec);
      req.resume();
      req.on('end', () => {
        const model = new URL(rec.url, 'http://x').searchParams.get('name') ?? '';
        const handler = routes.get(model);
        if (handler) handler(res, rec);
        else res.writeHead(500).end('no route');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/prefix`;
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const json = (status: number, body: unknown) => (res: ServerResponse) =>
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

  test('when bearer auth is configured, then every request carries the token under the tracking URI path prefix', async () => {
    serve('bearer', json(200, { model_version: { ...versionJson, name: 'bearer' } }));
    const mv = await clientWith({ auth: { kind: 'bearer', token: 'tok-123' } }).getModelVersion('bearer', 3);
    assert.equal(mv.version, 3);
    const req = lastRequest('bearer');
    assert.equal(req?.headers.authorization, 'Bearer tok-123');
    assert.equal(req?.url, '/prefix/api/2.0/mlflow/model-versions/get?name=bearer&version=3');
  });

  test('when basic auth is configured, then the Basic header encodes user:password and the client does not show it', async () => {
    serve('basic', json(200, { model_version: { ...versionJson, name: 'basic' } }));
    const c = clientWith({ auth: { kind: 'basic', username: 'alice', password: 's3cr3t-pw' } });
    await c.getModelVersion('basic', 3);
    const req = lastRequest('basic');
    assert.equal(req?.headers.authorization, `Basic ${Buffer.from('alice:s3cr3t-pw').toString('base64')}`);
    const shown = inspect(c, { showHidden: true, depth: 5 }) + JSON.stringify(c);
    assert.doesNotMatch(shown, /s3cr3t-pw|YWxpY2U6czNjcjN0LXB3/);
  });

  test('when no auth is configured, then no Authorization header is sent', async () => {
    serve('anon', json(200, { model_version: { ...versionJson, name: 'anon' } }));
    await clientWith().getModelVersion('anon', 3);
    assert.equal(lastRequest('anon')?.headers.authorization, undefined);
  });

  test('when a proxy answers 503 with HTML, then the error is retryable, names the status, and toActivityError leaves it alone', async () => {
    serve('proxy503', (res) => res.writeHead(503, { 'content-type': 'text/html' }).end('<html><body>Service\nUnavailable</body></html>'));
    const err = await mlflowError(clientWith().getRegisteredModel('proxy503'));
    assert.equal(err.status, 503);
    assert.equal(err.errorCode, 'HTTP_ERROR');
    assert.equal(err.retryable, true);
    assert.match(err.message, /registered-models\/get.*503.*non-JSON/);
    assert.doesNotMatch(err.message, /\n/);
    assert.equal(toActivityError(err), err);
  });

  test('when MLflow answers 429 or 500 with an error body, then the error is retryable', async () => {
    serve('limited', json(429, { error_code: 'REQUEST_LIMIT_EXCEEDED', message: 'slow down' }));
    serve('broken', json(500, { error_code: 'INTERNAL_ERROR', message: 'db gone' }));
    const limited = await mlflowError(clientWith().getRegisteredModel('limited'));
    assert.equal(limited.errorCode, 'REQUEST_LIMIT_EXCEEDED');
    assert.equal(limited.retryable, true);
    const broken = await mlflowError(clientWith().getRegisteredModel('broken'));
    assert.equal(broken.errorCode, 'INTERNAL_ERROR');
    assert.equal(broken.retryable, true);
    assert.equal(toActivityError(broken), broken);
  });

  test('when the server rejects the credentials and echoes them, then the error is MlflowUnauthorized without the secret', async () => {
    serve('denied', (res, req) =>
      res
        .writeHead(401, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error_code: 'UNAUTHENTICATED', message: `bad credentials: ${req.headers.authorization}` })),
    );
    const err = await mlflowError(clientWith({ auth: { kind: 'bearer', token: 'leaky-token-9' } }).getRegisteredModel('denied'));
    assert.equal(err.status, 401);
    assert.equal(err.retryable, false);
    const failure = toActivityError(err) as ApplicationFailure;
    assert.equal(failure.type, 'MlflowUnauthorized');
    assert.equal(failure.nonRetryable, true);
    for (const text of [err.message, failure.message, JSON.stringify(failure.details)]) assert.doesNotMatch(text, /leaky-token-9/);

    serve('forbidden', (res) => res.writeHead(403).end('Forbidden'));
    const forbidden = await mlflowError(clientWith().getRegisteredModel('forbidden'));
    assert.equal((toActivityError(forbidden) as ApplicationFailure).type, 'MlflowUnauthorized');
  });

  test('when a proxy answers a bare 404, then it is permanent but not MlflowNotFound (a wrong URL is not a deleted model)', async () => {
    serve('bare404', (res) => res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found'));
    const err = await mlflowError(clientWith().getModelVersion('bare404', 3));
    assert.equal(err.errorCode, 'HTTP_ERROR');
    assert.equal(err.retryable, false);
    assert.equal((toActivityError(err) as ApplicationFailure).type, 'MlflowPermanent');
  });

  test('when the model itself is missing, then getVersionByAlias throws even if the model name contains "alias"', async () => {
    serve('my-alias-model', json(404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'Registered Model with name=my-alias-model not found' }));
    serve('other-server', json(404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: "Alias 'prod' does not exist" }));
    const err = await mlflowError(clientWith().getVersionByAlias('my-alias-model', 'prod'));
    assert.equal(err.errorCode, 'RESOURCE_DOES_NOT_EXIST');
    assert.equal(await clientWith().getVersionByAlias('other-server', 'prod'), null);
  });

  test('when the server does not answer within timeoutMs, then the call fails with a retryable TIMEOUT', async () => {
    serve('hang', () => {
      /* never answers */
    });
    const started = Date.now();
    const err = await mlflowError(clientWith({ timeoutMs: 300 }).getRegisteredModel('hang'));
    const elapsed = Date.now() - started;
    assert.equal(err.errorCode, 'TIMEOUT');
    assert.equal(err.status, 0);
    assert.equal(err.retryable, true);
    assert.ok(elapsed < 3_000, `timed out after ${elapsed} ms`);
    assert.equal(toActivityError(err), err);
  });

  test('when nothing listens at the tracking URI, then the call fails with a retryable NETWORK_ERROR', async () => {
    const port = await freePort();
    const c = new MlflowClient({ trackingUri: `http://127.0.0.1:${port}`, timeoutMs: 2_000 });
    clients.push(c);
    const err = await mlflowError(c.getRun('r1'));
    assert.equal(err.errorCode, 'NETWORK_ERROR');
    assert.equal(err.endpoint, 'runs/get');
    assert.equal(err.retryable, true);
  });

  test('when a 200 answer has the wrong shape, then a schema error names the endpoint and the field', async () => {
    serve('shape', json(200, { model_version: { ...versionJson, name: 'shape', version: 'three' } }));
    const err = await rejection(clientWith().getModelVersion('shape', 3));
    assert.ok(err instanceof MlflowSchemaError);
    assert.equal(err.endpoint, 'model-versions/get');
    assert.equal(err.field, 'model_version.version');
    assert.equal(err.retryable, false);
    assert.match(err.message, /model-versions\/get.*model_version\.version/);
    assert.equal((toActivityError(err) as ApplicationFailure).type, 'MlflowPermanent');

    serve('stage', json(200, { model_version: { ...versionJson, name: 'stage', current_stage: 'Canary' } }));
    const stageErr = await rejection(clientWith().getModelVersion('stage', 3));
    assert.ok(stageErr instanceof MlflowSchemaError);
    assert.equal(stageErr.field, 'model_version.current_stage');

    serve('html200', (res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>'));
    const htmlErr = await rejection(clientWith().getModelVersion('html200', 3));
    assert.ok(htmlErr instanceof MlflowSchemaError);
    assert.equal(htmlErr.field, '(body)');
  });

  test('when a version number is not a positive integer, then nothing is sent and the error is permanent', async () => {
    const before = recorded.length;
    const err = await mlflowError(clientWith().getModelVersion('never-sent', 1.5));
    assert.equal(err.errorCode, 'INVALID_PARAMETER_VALUE');
    assert.equal(err.retryable, false);
    assert.equal(recorded.length, before);
  });

  test('when the tracking URI carries credentials, then construction fails without echoing them', () => {
    assert.throws(
      () => new MlflowClient({ trackingUri: 'http://bob:hunter2@127.0.0.1:1', timeoutMs: 1000 }),
      (e: Error) => /credentials/.test(e.message) && !/hunter2/.test(e.message),
    );
  });
});

describe('MLflow write conflicts', () => {
  test('when MLflow reports a lost race between concurrent writes with a 4xx, then the error is retryable; other 4xx stay permanent', () => {
    const conflict = new MlflowError({
      status: 400,
      errorCode: 'INVALID_PARAMETER_VALUE',
      endpoint: 'registered-models/alias',
      detail: '(sqlite3.IntegrityError) UNIQUE constraint failed: registered_model_aliases.name, registered_model_aliases.alias',
    });
    assert.equal(conflict.retryable, true);
    const invalid = new MlflowError({ status: 400, errorCode: 'INVALID_PARAMETER_VALUE', endpoint: 'model-versions/get', detail: 'bad version' });
    assert.equal(invalid.retryable, false);
  });
});

describe('MLflow connections the server closes', () => {
  let server: Server;
  let base: string;
  /** How many of the next requests the server reads and then drops by closing the connection, unanswered. */
  let drop = 0;
  const seen: string[] = [];
  const clients: MlflowClient[] = [];
  const client = (): MlflowClient => {
    const c = new MlflowClient({ trackingUri: base, timeoutMs: 5_000 });
    clients.push(c);
    return c;
  };

  before(async () => {
    server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      req.resume();
      req.on('end', () => {
        if (drop > 0) {
          drop--;
          req.socket.destroy();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ model_version: versionJson }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  test('when the server closes the connection of a GET without answering, then the GET is sent once more and its answer returned', async () => {
    const c = client();
    seen.length = 0;
    drop = 1;
    const mv = await c.getModelVersion('m', 3);
    assert.equal(mv.version, 3);
    assert.deepEqual(seen, ['GET /api/2.0/mlflow/model-versions/get?name=m&version=3', 'GET /api/2.0/mlflow/model-versions/get?name=m&version=3']);
  });

  test('when the server closes the connection of a POST without answering, then it is not sent again and the error is a retryable NETWORK_ERROR', async () => {
    const c = client();
    seen.length = 0;
    drop = 1;
    const err = await mlflowError(c.setVersionTag('m', 3, 'k', 'v'));
    assert.equal(err.errorCode, 'NETWORK_ERROR');
    assert.equal(err.retryable, true);
    assert.deepEqual(seen, ['POST /api/2.0/mlflow/model-versions/set-tag']);
  });

  test('when the server closes the connection of the GET sent again too, then the call fails (one extra attempt, no loop)', async () => {
    const c = client();
    seen.length = 0;
    drop = 2;
    const err = await mlflowError(c.getModelVersion('m', 3));
    assert.equal(err.errorCode, 'NETWORK_ERROR');
    assert.equal(seen.length, 2);
    drop = 0;
  });
});
