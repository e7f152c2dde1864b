/**
 * countFailures (src/activities/counted.ts): which activity failures count as an outside system failing, and
 * under which system label.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { countFailures } from '../src/activities/counted.js';
import { MlflowError } from '../src/mlflow/errors.js';
import { metricValue } from './support/metrics.js';

const errors = (system: string) => metricValue('modelgate_external_errors_total', { system });

describe('countFailures', () => {
  it('when an activity of a group fails, then the failure is counted once under the group\'s system unless it is modelgate\'s own or a cancellation', async () => {
    let next: Error | undefined;
    const group = countFailures(
      {
        act(input: { policy?: { provider: string } }): Promise<string> {
          if (next) return Promise.reject(next);
          return Promise.resolve(input.policy?.provider ?? 'none');
        },
      },
      (input) => ((input as { policy?: { provider: string } }).policy?.provider === 'github' ? 'github' : 'git'),
    );
    const before = { git: await errors('git'), github: await errors('github'), mlflow: await errors('mlflow') };

    assert.equal(await group.act({ policy: { provider: 'github' } }), 'github', 'results pass through');
    next = new Error('connection reset');
    await assert.rejects(group.act({ policy: { provider: 'github' } }), /connection reset/);
    await assert.rejects(group.act({}), /connection reset/);
    next = new MlflowError({ status: 503, errorCode: 'TEMPORARILY_UNAVAILABLE', endpoint: 'runs/get', detail: 'busy' });
    await assert.rejects(group.act({ policy: { provider: 'git' } }), MlflowError);
    next = ApplicationFailure.create({ type: 'ManifestInvalid', nonRetryable: true, message: 'bad yaml' });
    await assert.rejects(group.act({ policy: { provider: 'git' } }), /bad yaml/);
    next = new CancelledFailure('cancelled');
    await assert.rejects(group.act({ policy: { provider: 'git' } }), CancelledFailure);

    assert.deepEqual(
      { git: await errors('git'), github: await errors('github'), mlflow: await errors('mlflow') },
      { git: before.git + 1, github: before.github + 1, mlflow: before.mlflow + 1 },
    );
  });
});
