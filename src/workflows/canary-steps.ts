/**
 * Progressive rollout, workflow side (issue #14; PATCHES.canaryRollout). The approved promotion PR sets the
 * storageUri and the first step's canaryTrafficPercent in one change; every later step is a commit of its own
 * (canary-gitops.ts, idempotent per (model, version, run, step)). Each step waits until KServe reports the split
 * (latest revision ready at the step's percent, the rest on the previous revision, status current), soaks for
 * the step's pause, then runs the analysis: one `measureCanary` activity per sample, the interval timers and
 * the judgement here, so a failing sample is acted on at once and a lost worker loses at most one sample.
 * Failed → canaryTrafficPercent 0 and a wait until the previous revision serves everything; inconclusive →
 * pause for an attested continue/abort, bounded by the approval expiry (then abort). The state carries the
 * current step, so a worker restart replays to exactly where it stopped and no step is committed twice.
 */
import { ActivityFailure, condition, patched, sleep } from '@temporalio/workflow';
import { judgeMetric, judgeStep } from '../canary/judge.js';
import type { CanaryMetric, Measurement, MetricVerdict } from '../canary/types.js';
import type { CanaryPause, CanaryStepRecord, LifecycleState } from './definitions.js';
import { canaryAnalysis, canaryCluster, canaryGitops, isFailureOfType } from './activities.js';
import { PATCHES } from './patches.js';

type Note = (actor: string, action: string, detail?: string) => void;

export interface CanaryHooks {
  note: Note;
  details: (text: string) => void;
  /** Tell Slack (best effort) what the lifecycle looks like now. */
  tell: () => Promise<void>;
}

export type CanaryOutcome = { ok: true; revision?: string } | { ok: false; reason: string };

const runOf = (state: LifecycleState): { run?: string } => (state.request?.run ? { run: state.request.run } : {});

/**
 * Before any traffic moves: a canary needs a Serverless InferenceService with a revision serving (the `prev` of
 * every split). Returns the refusal, or undefined and records the previous revision.
 */
export async function prepareCanary(state: LifecycleState, hooks: CanaryHooks): Promise<string | undefined> {
  const g = state.policy!.deployment.gitops!;
  const k = state.policy!.deployment.kserve;
  state.canary ??= { step: 0, status: 'running', steps: [], pauses: 0 };
  if (!k) {
    state.canary.status = 'refused';
    return 'deployment.canary needs deployment.kserve: without it modelgate cannot see the traffic split';
  }
  const t = await canaryCluster.inspectCanaryTarget({ namespace: g.namespace, inferenceService: g.inferenceService, kserve: k });
  if (t.refusal) {
    state.canary.status = 'refused';
    hooks.note('modelgate', 'canary refused', t.refusal);
    return t.refusal;
  }
  state.canary.previousRevision = t.servingRevision;
  return undefined;
}

/** After the promotion PR merged (step 0 is in git): the steps, from the one the state says. */
export async function runCanary(state: LifecycleState, hooks: CanaryHooks): Promise<CanaryOutcome> {
  const c = state.canary!;
  const policy = state.policy!.deployment.canary!;
  const g = state.policy!.deployment.gitops!;
  const k = state.policy!.deployment.kserve!;
  const pr = state.pullRequest!;
  const storageUri = pr.storageUri ?? '';
  const label = (rec: CanaryStepRecord) => `step ${rec.step + 1}/${policy.steps.length} (${rec.percent}%)`;

  for (; c.step < policy.steps.length; c.step++) {
    const { percent, pauseMs } = policy.steps[c.step];
    const rec: CanaryStepRecord = (c.steps[c.step] ??= { step: c.step, percent, measurements: [] });
    if (!rec.commit) {
      if (c.step === 0) rec.commit = { sha: pr.mergeSha ?? '', url: pr.url };
      else {
        try {
          const commit = await canaryGitops.commitCanaryStep({
            ...runOf(state), model: state.model, version: state.version, policy: g, step: c.step, percent, storageUri, workflowId: state.workflowId,
            ...(policy.commit ? { commit: policy.commit } : {}),
          });
          rec.commit = { sha: commit.mergeSha, url: commit.url, alreadyApplied: commit.alreadyApplied };
        } catch (err) {
          if (!isFailureOfType(err, 'CanaryNotApplicable') && !isFailureOfType(err, 'ForeignPullRequest')) throw err;
          // The base branch no longer serves this version (someone changed it): nothing of ours to roll back.
          c.status = 'rolled_back';
          return { ok: false, reason: `canary stopped at ${label(rec)}: ${causeOf(err)}` };
        }
      }
      hooks.note('modelgate', `canary ${label(rec)} committed`, rec.commit.sha);
    }
    if (!rec.servedAt) {
      rec.waitStartedAt ??= new Date().toISOString();
      hooks.details(`canary ${label(rec)}: waiting until KServe serves the split`);
      const split = await canaryCluster.waitForCanary({
        namespace: g.namespace,
        inferenceService: g.inferenceService,
        kserve: k,
        percent,
        storageUri,
        previousRevision: c.previousRevision,
        startedAt: rec.waitStartedAt,
      });
      if (split.outcome === 'failed') return rollBack(state, hooks, `canary ${label(rec)}: ${split.reason}`, []);
      rec.revision = split.revision;
      rec.servedAt = split.observedAt;
      c.previousRevision ??= split.previousRevision;
      hooks.note('kserve', `canary ${label(rec)} serving`, split.revision);
    }
    if (pauseMs > 0) {
      hooks.details(`canary ${label(rec)}: soaking ${Math.round(pauseMs / 1000)} s before the analysis`);
      await sleep(pauseMs);
    }
    for (;;) {
      hooks.details(`canary ${label(rec)}: analysing`);
      const round = await analyse(state, rec);
      rec.verdict = round.verdict;
      const summary = summarize(policy.metrics, round.byMetric);
      if (round.verdict === 'successful') {
        hooks.note('modelgate', `canary ${label(rec)} analysis successful`, summary);
        break;
      }
      if (round.verdict === 'failed') {
        const failing = offenders(policy.metrics, round.byMetric, 'failed');
        hooks.note('modelgate', `canary ${label(rec)} analysis failed`, summary);
        return rollBack(state, hooks, `canary analysis failed at ${label(rec)}: ${describe(failing)}`, failing);
      }
      const unsure = offenders(policy.metrics, round.byMetric, 'inconclusive');
      hooks.note('modelgate', `canary ${label(rec)} analysis inconclusive`, summary);
      const decision = await pauseForDecision(state, hooks, rec, `analysis inconclusive: ${describe(unsure)}`);
      if (decision.kind === 'abort') {
        return rollBack(state, hooks, `canary aborted at ${label(rec)} by ${decision.by}${decision.reason ? `: ${decision.reason}` : ''} (analysis inconclusive: ${describe(unsure)})`, unsure);
      }
    }
  }
  if (policy.finalSoakMs && policy.finalSoakMs > 0) {
    hooks.details(`canary at 100%: final soak of ${Math.round(policy.finalSoakMs / 1000)} s`);
    await sleep(policy.finalSoakMs);
  }
  c.status = 'succeeded';
  return { ok: true, revision: c.steps[c.steps.length - 1]?.revision };
}

interface Round {
  verdict: MetricVerdict;
  byMetric: Record<string, Measurement[]>;
}

/** One analysis round of a step: every metric sampled on its own interval until the step has a verdict. */
async function analyse(state: LifecycleState, rec: CanaryStepRecord): Promise<Round> {
  const metrics = state.policy!.deployment.canary!.metrics;
  const byMetric: Record<string, Measurement[]> = Object.fromEntries(metrics.map((m) => [m.name, [] as Measurement[]]));
  const nextAt = new Map(metrics.map((m) => [m.name, Date.now()]));
  // After the timer to `wake` fired it is `wake`, whatever the next task's clock reads: that clock once differed
  // between an execution and its replay (docs/operations.md, "Deadlines are judged by their timers").
  const dueByTimer = patched(PATCHES.canaryDueByTimer);
  for (;;) {
    const verdict = judgeStep(metrics, byMetric);
    if (verdict !== 'running') return { verdict, byMetric };
    const running = metrics.filter((m) => judgeMetric(m, byMetric[m.name]) === 'running');
    // judgeStep says running but no metric is: a judgement we cannot act on is a person's call.
    if (running.length === 0) return { verdict: 'inconclusive', byMetric };
    const wake = Math.min(...running.map((m) => nextAt.get(m.name)!));
    let now = Date.now();
    if (wake > now) {
      await sleep(wake - now);
      if (!dueByTimer) continue;
      now = wake;
    }
    const due = running.filter((m) => nextAt.get(m.name)! <= now);
    const samples = await Promise.all(due.map((m) => measure(state, rec, m, byMetric[m.name].length)));
    due.forEach((m, i) => {
      byMetric[m.name].push(samples[i]);
      rec.measurements.push(samples[i]);
      nextAt.set(m.name, Date.now() + m.intervalMs);
    });
  }
}

async function measure(state: LifecycleState, rec: CanaryStepRecord, metric: CanaryMetric, sampleIndex: number): Promise<Measurement> {
  try {
    return await canaryAnalysis.measureCanary({
      model: state.model,
      version: state.version,
      ...(rec.revision ? { revision: rec.revision } : {}),
      step: rec.step,
      percent: rec.percent,
      metric,
      sampleIndex,
    });
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    // Out of retries (or not configured): an error sample; the consecutive-error limit decides what it means.
    return { metric: metric.name, phase: 'error', message: causeOf(err).slice(0, 300), at: new Date().toISOString(), sampleIndex };
  }
}

/** Inconclusive: a person decides (attested update, lifecycle.ts); no decision before the deadline aborts. */
async function pauseForDecision(state: LifecycleState, hooks: CanaryHooks, rec: CanaryStepRecord, reason: string): Promise<NonNullable<CanaryPause['decision']>> {
  const c = state.canary!;
  const waitMs = state.policy!.approval.expiresAfterMs;
  const pause: CanaryPause = { id: c.pauses + 1, step: rec.step, reason, since: new Date().toISOString(), deadline: new Date(Date.now() + waitMs).toISOString() };
  c.pauses = pause.id;
  c.pause = pause;
  c.status = 'paused';
  hooks.note('modelgate', 'canary paused', `${reason}; continue or abort (modelgate canary continue|abort) before ${pause.deadline}`);
  hooks.details(`canary paused at ${rec.percent}%: ${reason}; waiting for continue or abort until ${pause.deadline}`);
  await hooks.tell();
  const decided = await condition(() => pause.decision !== undefined, waitMs);
  if (!decided) {
    pause.decision = { kind: 'abort', by: 'modelgate', at: new Date().toISOString(), verified: true, reason: `no decision before ${pause.deadline}` };
    hooks.note('modelgate', 'canary pause expired', pause.decision.reason);
  }
  c.status = pause.decision!.kind === 'continue' ? 'running' : 'rolling_back';
  return pause.decision!;
}

type Offender = NonNullable<NonNullable<LifecycleState['canary']>['failure']>['metrics'][number];

/** Failed or aborted: canaryTrafficPercent 0, then wait until the previous revision serves all the traffic. */
async function rollBack(state: LifecycleState, hooks: CanaryHooks, reason: string, metrics: Offender[]): Promise<CanaryOutcome> {
  const c = state.canary!;
  const g = state.policy!.deployment.gitops!;
  const k = state.policy!.deployment.kserve!;
  c.status = 'rolling_back';
  c.failure = { reason, metrics };
  hooks.details(`${reason}; rolling back to 0%`);
  const commit = await canaryGitops.commitCanaryStep({
    ...runOf(state),
    model: state.model,
    version: state.version,
    policy: g,
    step: 'abort',
    percent: 0,
    storageUri: state.pullRequest?.storageUri ?? '',
    workflowId: state.workflowId,
    reason,
    ...(state.policy!.deployment.canary?.commit ? { commit: state.policy!.deployment.canary.commit } : {}),
  });
  c.rollback = { sha: commit.mergeSha, url: commit.url };
  hooks.note('modelgate', 'canary rolled back to 0%', commit.mergeSha);
  if (c.previousRevision) {
    const back = await canaryCluster.waitForCanary({
      namespace: g.namespace,
      inferenceService: g.inferenceService,
      kserve: k,
      percent: 0,
      storageUri: state.pullRequest?.storageUri ?? '',
      previousRevision: c.previousRevision,
      rollback: true,
      startedAt: new Date().toISOString(),
    });
    c.rollback.previousServing = back.outcome === 'serving';
    if (back.outcome === 'failed') c.rollback.detail = back.reason;
    hooks.note('kserve', back.outcome === 'serving' ? 'previous revision serving all traffic' : 'previous revision not serving', back.outcome === 'serving' ? c.previousRevision : back.reason);
  }
  c.status = 'rolled_back';
  return { ok: false, reason };
}

function offenders(metrics: readonly CanaryMetric[], byMetric: Record<string, Measurement[]>, verdict: MetricVerdict): Offender[] {
  return metrics
    .filter((m) => judgeMetric(m, byMetric[m.name]) === verdict)
    .map((m) => {
      const ms = byMetric[m.name];
      return { metric: m.name, query: ms.find((x) => x.query)?.query, values: ms.map((x) => (x.value === undefined ? null : x.value)), phases: ms.map((x) => x.phase) };
    });
}

function describe(list: Offender[]): string {
  if (list.length === 0) return 'no metric named';
  return list.map((o) => `${o.metric} [${o.values.map((v) => (v === null ? '—' : String(round4(v)))).join(', ')}]${o.query ? ` (${o.query})` : ''}`).join('; ');
}

function summarize(metrics: readonly CanaryMetric[], byMetric: Record<string, Measurement[]>): string {
  return metrics
    .map((m) => {
      const ms = byMetric[m.name];
      return `${m.name}: ${judgeMetric(m, ms)} [${ms.map((x) => (x.value === undefined ? x.phase : `${round4(x.value)}${x.phase === 'successful' ? '' : ` ${x.phase}`}`)).join(', ')}]`;
    })
    .join('; ');
}

function round4(v: number): number {
  return Math.round(v * 10_000) / 10_000;
}

function causeOf(err: unknown): string {
  const e = err as Error & { cause?: Error };
  return e.cause?.message ?? e.message ?? String(err);
}
