/** The dry-run report as terminal text (the CLI's human output; `--json` prints the report itself). */
import type { DryRunReport } from './types.js';

const OUTCOME: Record<DryRunReport['outcome'], string> = {
  would_await_approval: 'would pass the gate and wait for approval',
  already_serving: 'serves already: nothing would change',
  rejected_by_evaluation: 'would be REJECTED by the evaluation gate',
  no_approver_possible: 'would pass the gate but NOBODY could approve it',
  not_promotable: 'could NOT be promoted',
};

export function renderDryRun(r: DryRunReport): string {
  const out: string[] = [];
  out.push(`dry run: ${r.model} version ${r.version} ${OUTCOME[r.outcome]} (nothing was changed)`);
  const policyWhere = `${r.policy.file === 'supplied' ? 'supplied, not deployed' : 'deployed'} ${r.policy.fileName}`;
  out.push(`  policy      ${r.policy.source === 'defaults' ? 'defaults (model not listed)' : 'model entry'} of the ${policyWhere}`);
  out.push(`  version     ${r.candidate.stage}, ${r.candidate.status}, registered by ${r.candidate.registrant ?? 'unknown'}${r.candidate.promotedBefore ? `, in Production before (${r.candidate.promotedBefore})` : ''}`);
  out.push(`  serving     ${r.serving.version !== undefined ? `version ${r.serving.version}` : 'nothing'}`);
  out.push(`  move        ${r.move.kind}: ${r.move.detail}`);
  if (r.lifecycle) out.push(`  lifecycle   ${r.lifecycle.workflowId} ${r.lifecycle.status}${r.lifecycle.phase ? ` (${r.lifecycle.phase.replace(/_/g, ' ')}${r.lifecycle.outcome ? `: ${r.lifecycle.outcome}` : ''})` : ''}`);
  if (r.evaluation.skipped) out.push('evaluation: skipped (a rollback returns a version that served before)');
  else if (r.evaluation.result) {
    const e = r.evaluation.result;
    out.push(`evaluation: ${e.passed ? 'passed' : 'FAILED'}${e.baselineVersion !== undefined ? ` against version ${e.baselineVersion}, serving now` : ', nothing serving to compare'}`);
    for (const c of e.checks) out.push(`  ${c.passed ? 'ok  ' : 'FAIL'} ${c.detail}`);
  }
  const a = r.approval;
  out.push(`approval: quorum ${a.quorum} of ${a.approvers.join(', ') || 'nobody'}; four-eyes ${a.fourEyes ? 'on' : 'off'}; registrants ${a.registrants.join(', ') || 'unknown'}`);
  if (!a.fourEyesSatisfiable) out.push('  four-eyes cannot be satisfied: nobody knows who registered the version');
  out.push(`  ${a.reapproval.needed ? 're-approval needed' : 'approvals'}: ${a.reapproval.reason}`);
  if (a.caller) out.push(`  you (${a.caller.identity}) ${a.caller.may ? 'may approve' : `may NOT approve: ${a.caller.reason ?? 'refused'}`}`);
  if (r.gitops) {
    const g = r.gitops;
    out.push(`pull request: "${g.title}" into ${g.repo} ${g.baseBranch}, ${g.manifestPath}`);
    out.push(`  storageUri ${g.currentStorageUri ?? '(none)'} -> ${g.proposedStorageUri || '(unknown)'}`);
    if (g.error) out.push(`  manifest not previewed: ${g.error}`);
    else if (g.diff) out.push(...g.diff.trimEnd().split('\n').map((l) => `  ${l}`));
    else out.push('  (no change: the base branch already serves this version)');
  }
  out.push(`rollout: waits for ${r.rollout.waitsFor}`);
  for (const b of r.blockers) out.push(`blocker: ${b}`);
  for (const n of r.notes) out.push(`note: ${n}`);
  return out.join('\n');
}
