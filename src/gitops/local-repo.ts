/**
 * The embedded demo's GitOps repository: a local bare repository whose `main` holds a commented sample
 * InferenceService manifest, so the whole promotion loop runs without GitHub (`npm start`).
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createGitRunner, type GitIdentity, type GitRunner } from './git-cli.js';
import { GitPlumbing } from './git-plumbing.js';

export interface LocalGitopsRepo {
  /** Absolute path of the bare repository (the policy's `gitops.repo`). */
  repo: string;
  baseBranch: string;
  manifestPath: string;
  /** False when the repository already existed and was left as it was. */
  created: boolean;
}

export async function initLocalGitopsRepo(
  dir: string,
  opts: { model: string; namespace: string; name: string; manifestPath?: string; identity?: GitIdentity; runGit?: GitRunner },
): Promise<LocalGitopsRepo> {
  const repo = resolve(dir);
  const baseBranch = 'main';
  const manifestPath = opts.manifestPath ?? `inferenceservices/${opts.name}.yaml`;
  const identity = opts.identity ?? { name: 'modelgate', email: 'modelgate@localhost' };
  const git = new GitPlumbing(repo, opts.runGit ?? createGitRunner({ identity }));
  if (existsSync(join(repo, 'HEAD'))) {
    // Idempotent across restarts: keep whatever the demo has merged so far.
    if (await git.resolve(`refs/heads/${baseBranch}`)) return { repo, baseBranch, manifestPath, created: false };
  } else {
    await mkdir(repo, { recursive: true });
    await git.ok(['init', '--bare', '--quiet', `--initial-branch=${baseBranch}`, repo]);
  }
  const commit = await git.commitFiles({
    files: [
      { path: manifestPath, content: sampleInferenceService(opts) },
      { path: 'README.md', content: readme(manifestPath) },
    ],
    parents: [],
    message: `Add the ${opts.name} InferenceService\n`,
  });
  await git.ok(['update-ref', `refs/heads/${baseBranch}`, commit, '']);
  return { repo, baseBranch, manifestPath, created: true };
}

export function sampleInferenceService(opts: { model: string; namespace: string; name: string }): string {
  return `# KServe InferenceService serving the MLflow model "${opts.model}".
# modelgate proposes every promotion as a change of this file: it sets spec.predictor.model.storageUri and
# the modelgate.io/* labels and annotations. Everything else here is yours to edit; comments and layout survive.
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: ${opts.name}
  namespace: ${opts.namespace}
  annotations:
    # Serverless (Knative revisions, canary traffic) or RawDeployment (plain Deployment).
    serving.kserve.io/deploymentMode: RawDeployment
spec:
  predictor:
    minReplicas: 1
    model:
      modelFormat:
        name: mlflow
      # MLServer speaks the Open Inference Protocol (v2): GET /v2/models/${opts.name}/ready
      protocolVersion: v2
      # Placeholder until the first promotion; then the approved version's artifact directory (holds MLmodel).
      storageUri: s3://models/${opts.model}/unset
      resources:
        requests:
          cpu: 100m
          memory: 512Mi
`;
}

function readme(manifestPath: string): string {
  return `# GitOps repository (modelgate demo)

\`${manifestPath}\` is the InferenceService ArgoCD would sync. modelgate proposes a promotion as a branch
\`modelgate/<model>/v<version>\`; approving it merges the branch into \`main\` with a merge commit carrying
\`Modelgate-Branch:\` and \`Approved-by:\` trailers. See docs/gitops.md in the modelgate repository.
`;
}
