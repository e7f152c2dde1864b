/**
 * Builds the workflow bundle once (dist/workflow-bundle.js) so the worker, tests and benchmarks load the
 * same code without bundling at every start.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { PROJECT_ROOT } from '../src/stack/embedded.js';

const { code } = await bundleWorkflowCode({
  workflowsPath: join(PROJECT_ROOT, 'dist', 'src', 'workflows', 'index.js'),
  logger: { log() {}, trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error },
});
writeFileSync(join(PROJECT_ROOT, 'dist', 'workflow-bundle.js'), code);
