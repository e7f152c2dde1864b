/**
 * The audit's "what is serving" per the GitOps repository: for a model whose policy deploys by GitOps, the
 * InferenceService manifest on the base branch — the state ArgoCD syncs the cluster to — read through the same
 * provider the lifecycle writes with. Models in registry mode have no manifest (null).
 */
import type { GitopsProvider } from '../gitops/provider.js';
import { readServingFields } from '../gitops/manifest.js';
import type { GitopsPolicy, ModelPolicy } from '../policy/types.js';
import type { ServingFacts, ServingReader } from './types.js';

export interface GitopsServingDeps {
  policyFor(model: string): ModelPolicy;
  providerFor(policy: GitopsPolicy): GitopsProvider;
}

export function gitopsServingReader(deps: GitopsServingDeps): ServingReader {
  return {
    async describe(model: string): Promise<ServingFacts | null> {
      let policy: ModelPolicy;
      try {
        policy = deps.policyFor(model);
      } catch {
        return null; // no policy: modelgate does not deploy this model
      }
      const g = policy.deployment.mode === 'gitops' ? policy.deployment.gitops : undefined;
      if (!g) return null;
      const source = `${g.provider}:${g.repo}@${g.baseBranch}:${g.manifestPath}`;
      const file = await deps.providerFor(g).readFile(g.manifestPath, g.baseBranch);
      if (!file) return { source, detail: `${g.manifestPath} does not exist on ${g.baseBranch}` };
      const fields = readServingFields(file.content, { namespace: g.namespace, name: g.inferenceService }, g.manifestPath);
      const labelled = fields.version ? `labelled ${fields.model ?? model} v${fields.version}` : 'no modelgate version label';
      return { source, storageUri: fields.storageUri, revision: file.commit, detail: `${g.namespace}/${g.inferenceService}, ${labelled}` };
    },
  };
}
