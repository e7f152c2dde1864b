/** Worker Versioning from tests, as the release runbook does it: the Temporal CLI's `worker deployment` commands. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { resolveTemporalBinary } from '../../src/stack/embedded.js';
import { testStack } from './stack.js';
import { eventually } from './wait.js';

/** `temporal worker deployment <command> … --yes`, retried until the server has seen the version's pollers. */
function deploymentCommand(command: string[], what: string): Promise<true> {
  const args = ['worker', 'deployment', ...command, '--yes', '--address', testStack().temporalAddress, '--namespace', 'default'];
  return eventually(what, async () => {
    try {
      await promisify(execFile)(resolveTemporalBinary(), args, { encoding: 'utf8' });
      return true as const;
    } catch {
      return undefined; // the version has not polled yet
    }
  }, 60_000);
}

export async function setCurrentVersion(deploymentName: string, buildId: string): Promise<void> {
  await deploymentCommand(['set-current-version', '--deployment-name', deploymentName, '--build-id', buildId], `${deploymentName}:${buildId} current`);
}

export async function setRampingVersion(deploymentName: string, buildId: string, percentage: number): Promise<void> {
  await deploymentCommand(
    ['set-ramping-version', '--deployment-name', deploymentName, '--build-id', buildId, '--percentage', String(percentage)],
    `${deploymentName}:${buildId} ramping`,
  );
}
