/**
 * A worker process for the "killed between PR created and activity completion" test: runs the
 * openPromotionPullRequest activity against the GitHub double and prints its result. The test kills it with
 * SIGKILL while the double holds the PR-creation response.
 * Usage: node github-child.js '<json: {baseUrl, token, policy, model, version}>'
 */
import { createGitopsActivities } from '../../src/activities/gitops.js';
import { createProviderFactory, loadGitopsConfig } from '../../src/config/gitops.js';
import type { GitopsPolicy } from '../../src/policy/types.js';
import { fakeMlflow, MARKER_SECRET } from './github-fixtures.js';

const args = JSON.parse(process.argv[2] ?? '{}') as { baseUrl: string; token: string; policy: GitopsPolicy; model: string; version: number };
const factory = createProviderFactory(loadGitopsConfig({ GITHUB_TOKEN: args.token, GITHUB_API_URL: args.baseUrl }));
const activities = createGitopsActivities({ providerFor: factory.providerFor, mlflow: fakeMlflow(), links: { namespace: 'default' }, markerSecret: MARKER_SECRET });
activities
  .openPromotionPullRequest({ model: args.model, version: args.version, workflowId: `modelgate/${args.model}/v${args.version}`, policy: args.policy })
  .then((ref) => process.stdout.write(`${JSON.stringify(ref)}\n`))
  .catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
