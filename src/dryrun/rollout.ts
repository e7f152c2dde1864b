/**
 * What a promotion waits for after the change and before it calls the version Production, in one line a person
 * reads, from the policy alone (the lifecycle's rollOut: registry mode moves the alias and waits for nothing;
 * GitOps merges the PR, then waits for ArgoCD, KServe readiness and the smoke probe within the deadline).
 */
import type { ModelPolicy } from '../policy/types.js';
import type { DryRunReport } from './types.js';

export function describeRollout(policy: ModelPolicy): DryRunReport['rollout'] {
  const d = policy.deployment;
  if (d.mode !== 'gitops') {
    return { mode: 'registry', waitsFor: `nothing: the production alias moves to the version and serving loads models:/${policy.model}@production on its own schedule` };
  }
  const g = d.gitops;
  const k = d.kserve;
  const isvc = g ? `${g.namespace}/${g.inferenceService}` : '(no gitops section)';
  const steps = ['the pull request is merged once approved'];
  if (k?.argocdApplication) steps.push(`ArgoCD Application ${k.argocdApplication.namespace}/${k.argocdApplication.name} synced to the merge commit`);
  steps.push(`InferenceService ${isvc} Ready on the new storageUri${k ? ` (${k.deploymentMode})` : ''}`);
  if (k?.smokeUrl) steps.push('the model server answers its readiness probe');
  return {
    mode: 'gitops',
    waitsFor: `${steps.join(', then ')}${k ? ` — within ${minutes(k.rolloutDeadlineMs)}` : ''}`,
    ...(g ? { namespace: g.namespace, inferenceService: g.inferenceService } : {}),
    ...(k
      ? {
          deploymentMode: k.deploymentMode,
          deadlineMs: k.rolloutDeadlineMs,
          ...(k.argocdApplication ? { argocdApplication: k.argocdApplication } : {}),
          smokeCheck: !!k.smokeUrl,
          onFailure: k.rollback,
        }
      : {}),
  };
}

function minutes(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000}m` : `${Math.round(ms / 1000)}s`;
}
