/**
 * What a canary needs around modelgate in tests and the P9 bench: an "ArgoCD + KServe" loop that applies what
 * lands on a bare repo's main branch to the InferenceService in the k8s double and reports the split KServe
 * would (revisions, traffic), and the analysis stand-in whose per-model error rate (or unreachability) the
 * caller sets; it renders the query and classifies the value with src/canary's condition language.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { parseCondition } from '../../src/canary/condition.js';
import { renderQuery } from '../../src/canary/query.js';
import type { CanaryActivities, MeasureCanaryInput, Measurement } from '../../src/canary/types.js';
import { readCanaryPercent } from '../../src/gitops/canary-manifest.js';
import { readServingFields } from '../../src/gitops/manifest.js';
import { INFERENCE_SERVICES, type InferenceService } from '../../src/k8s/types.js';
import type { K8sDouble } from './k8s-double.js';
import { applyCanaryPercent, markCanarySplit, revisionName } from './k8s-fixtures.js';

const run = promisify(execFile);

/** Per model: the error rate the stand-in's counters show, or no answer at all (Prometheus unreachable). */
export const metricsSource = new Map<string, { errorRate: number; unreachable?: boolean }>();

export const standInAnalysis: CanaryActivities = {
  measureCanary(input: MeasureCanaryInput): Promise<Measurement> {
    const src = metricsSource.get(input.model) ?? { errorRate: 0 };
    const query = renderQuery(input.metric.query, { version: input.version, ...(input.revision ? { revision: input.revision } : {}) });
    const at = new Date().toISOString();
    if (src.unreachable) {
      return Promise.resolve({ metric: input.metric.name, phase: 'error', message: 'Prometheus unreachable: connect ECONNREFUSED 127.0.0.1:9', at, query, sampleIndex: input.sampleIndex });
    }
    const ok = parseCondition(input.metric.successCondition).test(src.errorRate);
    return Promise.resolve({ metric: input.metric.name, value: src.errorRate, phase: ok ? 'successful' : 'failed', at, query, sampleIndex: input.sampleIndex });
  },
};

export interface Cluster {
  namespace: string;
  name: string;
  repo: string;
  manifestPath: string;
  /** What "ArgoCD" applied, in order: `<percent>@<storageUri>`. */
  applied: string[];
  /** Called after a change is applied to the spec, before KServe reports its split; may hold it back. */
  onApply?: (percent: number) => Promise<void> | void;
}

export async function manifestAt(c: Pick<Cluster, 'repo' | 'manifestPath'>, ref = 'main'): Promise<string> {
  return (await run('git', ['--git-dir', c.repo, 'show', `${ref}:${c.manifestPath}`], { encoding: 'utf8' })).stdout;
}

/** One look at main: apply a changed storageUri / canaryTrafficPercent, then report the split. */
export async function reconcile(double: K8sDouble, c: Cluster): Promise<void> {
  const text = await manifestAt(c);
  const target = { namespace: c.namespace, name: c.name };
  const uri = readServingFields(text, target).storageUri!;
  const percent = readCanaryPercent(text, target) ?? 100;
  const isvc = double.read(INFERENCE_SERVICES, c.namespace, c.name) as InferenceService;
  const spec = isvc.spec!.predictor!;
  if (spec.model?.storageUri === uri && (spec.canaryTrafficPercent ?? 100) === percent) return;
  const p = isvc.status!.components!.predictor;
  const newVersion = spec.model?.storageUri !== uri;
  // A new storageUri makes a new revision; the one that served all the traffic becomes `prev`.
  const previous = newVersion
    ? (p.traffic!.find((t) => t.percent === 100)?.revisionName ?? p.latestRolledoutRevision!)
    : p.latestRolledoutRevision === p.latestReadyRevision
      ? p.previousRolledoutRevision!
      : p.latestRolledoutRevision!;
  const applied = applyCanaryPercent(double, c.namespace, c.name, { storageUri: uri, percent });
  const latest = newVersion ? revisionName(c.name, applied.metadata!.generation!) : p.latestReadyRevision!;
  c.applied.push(`${percent}@${uri}`);
  await c.onApply?.(percent);
  markCanarySplit(double, c.namespace, c.name, { latest, previous, percent });
}

/** Reconcile every cluster every `intervalMs` until stopped. */
export function startReconciler(double: K8sDouble, clusters: Iterable<Cluster> | (() => Iterable<Cluster>), intervalMs = 150): { stop(): Promise<void> } {
  let on = true;
  const list = typeof clusters === 'function' ? clusters : () => clusters;
  const loop = (async () => {
    while (on) {
      for (const c of list()) await reconcile(double, c).catch((err: unknown) => process.stderr.write(`reconcile ${c.name}: ${String(err)}\n`));
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    async stop() {
      on = false;
      await loop;
    },
  };
}
