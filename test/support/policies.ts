/** Test policies: each test names its own model `<kind>-<unique>`, and the policy file's `models:` key is the kind. */
import { parsePolicy } from '../../src/policy/load.js';
import type { PolicySource } from '../../src/activities/registry.js';

export function policiesByPrefix(text: string, fileName: string): PolicySource {
  const set = parsePolicy(text, fileName);
  return {
    policyFor(model: string) {
      const kind = set.models().find((m) => model.startsWith(`${m}-`));
      return { ...set.policyFor(kind ?? model), model };
    },
  };
}

/**
 * The policy of one model whose GitOps repo is a local bare repository (initLocalGitopsRepo): `evaluation` and
 * `approval` are YAML flow mappings, `gitopsExtra` further `key: value` lines under `gitops`.
 */
export function localGitopsPolicy(
  model: string,
  repo: { repo: string; manifestPath: string },
  opts: { namespace: string; evaluation: string; approval: string; gitopsExtra?: string[] },
) {
  const text = `
defaults:
  evaluation: ${opts.evaluation}
  approval: ${opts.approval}
  deployment:
    mode: gitops
    gitops:
      provider: git
      repo: ${JSON.stringify(repo.repo)}
      manifestPath: ${repo.manifestPath}
      namespace: ${opts.namespace}
      inferenceService: ${model}
      storageUriPrefixMap: [{ from: "mlflow-artifacts:/", to: "s3://mlflow-artifacts/" }]
${(opts.gitopsExtra ?? []).map((l) => `      ${l}\n`).join('')}`;
  return { ...parsePolicy(text, `${model}.yaml`).policyFor(model), model };
}
