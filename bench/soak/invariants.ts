/**
 * The soak's invariants over one snapshot taken after it stopped: what MLflow holds (through the registry, not
 * the proxy's log), what every lifecycle says (its state query), and every write MLflow applied (the recording
 * proxy). Pure, so a test can inject a fault into a snapshot and see the checker fail.
 */
import type { Outcome, Phase } from '../../src/workflows/definitions.js';

export interface VersionSnapshot {
  version: number;
  /** The stage modelgate recorded (stageOf: the modelgate.stage tag, else MLflow's stage). */
  stage: string;
  /** MLflow's own stage (None where the registry serves no stages). */
  mlflowStage: string;
  aliases: string[];
  tags: Record<string, string>;
  /** The lifecycle's state; undefined when the soak started none for this version or its query failed. */
  phase?: Phase;
  outcome?: Outcome;
  /** When its state query kept failing (retried on a budget): what Temporal's describe and history say. */
  diagnosis?: { verdict: 'task-failing' | 'slow' | 'completed' | 'unknown'; text: string };
}

export interface ModelSnapshot {
  model: string;
  versions: VersionSnapshot[];
}

export interface AppliedWrite {
  path: string;
  body: Record<string, unknown> | undefined;
  /** Its index among every request the proxy saw (to place it against worker kills). */
  at?: number;
}

export interface SoakSnapshot {
  models: ModelSnapshot[];
  /** Writes MLflow answered 2xx (POST/PATCH/DELETE), in order. */
  applied: AppliedWrite[];
  /** Lifecycle runs the soak started per `${model}#${version}` (a rollback is another run of the same version). */
  runs: Record<string, number>;
  /** Whether the registry served MLflow stages (then MLflow's stage must agree too). */
  stagesServed: boolean;
  /**
   * For each lock token MLflow was asked to write more than once (`${model}#${token}`): how many nextFenceToken
   * activities the model's lock workflow scheduled with it (its history) and the attempt that completed. One
   * scheduled activity is one grant: the token is chosen in workflow code, so a retried attempt (after a worker
   * kill or a start-to-close timeout) rewrites the identical value — idempotent, not a second grant.
   */
  lockTokenGrants?: Record<string, { scheduled: number; attempts: number[] }>;
  /** Worker kills, each as the number of MLflow requests the proxy had seen when it happened. */
  killsAtRequest?: number[];
}

export interface InvariantRow {
  name: string;
  pass: boolean;
  /** What was checked, or the first violations. */
  detail: string;
}

const key = (model: string, version: number) => `${model}#${version}`;

/** Duplicate side effects: applied writes of one effect beyond the runs allowed to make it (one per run). */
export function duplicateSideEffects(s: SoakSnapshot): { count: number; examples: string[]; idempotentRetries: string[] } {
  const idempotentRetries: string[] = [];
  const counts = new Map<string, { n: number; allowed: number }>();
  const bump = (k: string, allowed: number) => {
    const c = counts.get(k) ?? { n: 0, allowed };
    c.n++;
    counts.set(k, c);
  };
  for (const w of s.applied) {
    const b = w.body ?? {};
    const name = String(b.name);
    const runs = (v: unknown) => s.runs[key(name, Number(v))] ?? 1;
    if (w.path.startsWith('model-versions/transition-stage')) bump(`${name} v${String(b.version)} → ${String(b.stage)}`, runs(b.version));
    else if (w.path.startsWith('registered-models/alias') && b.version !== undefined) bump(`${name} alias ${String(b.alias)} → v${Number(b.version)}`, runs(b.version));
    else if (w.path.startsWith('model-versions/set-tag')) bump(`${name} v${String(b.version)} tag ${String(b.key)}=${String(b.value)}`, runs(b.version));
    // Fencing tokens grow with each grant: one value written twice is a grant applied twice.
    // A same-value rewrite is allowed only when the lock's history shows one scheduled activity for that token
    // (one grant, its activity retried); without that evidence it counts as a grant applied twice.
    else if (w.path.startsWith('registered-models/set-tag') && b.key === 'modelgate.lock_token') {
      const g = s.lockTokenGrants?.[`${name}#${String(b.value)}`];
      bump(`${name} lock token ${String(b.value)}`, g && g.scheduled === 1 ? Number.MAX_SAFE_INTEGER : 1);
    }
  }
  let count = 0;
  const examples: string[] = [];
  for (const [k, c] of counts) {
    if (c.n > 1 && c.allowed === Number.MAX_SAFE_INTEGER) idempotentRetries.push(`${k} ×${c.n}`);
    if (c.n > c.allowed) {
      count += c.n - c.allowed;
      if (examples.length < 5) examples.push(`${k} ×${c.n} (allowed ${c.allowed})`);
    }
  }
  return { count, examples, idempotentRetries };
}

export function checkInvariants(s: SoakSnapshot): InvariantRow[] {
  const oneProduction: string[] = [];
  const agree: string[] = [];
  const stuck: string[] = [];
  let lifecycles = 0;
  for (const m of s.models) {
    const byStage = m.versions.filter((v) => v.stage === 'Production').map((v) => v.version);
    const byMlflowStage = s.stagesServed ? m.versions.filter((v) => v.mlflowStage === 'Production').map((v) => v.version) : [];
    const byAlias = m.versions.filter((v) => v.aliases.includes('production')).map((v) => v.version);
    const byWorkflow = m.versions.filter((v) => v.phase === 'production').map((v) => v.version);
    const everPromoted = m.versions.some((v) => v.tags['modelgate.promoted_at'] !== undefined);
    const sets = [byStage, byAlias, byWorkflow, ...(s.stagesServed ? [byMlflowStage] : [])];
    const want = everPromoted ? 1 : 0;
    if (sets.some((x) => x.length !== want) || new Set(sets.map((x) => x.join(','))).size > 1) {
      oneProduction.push(`${m.model}: stage ${fmt(byStage)}, alias ${fmt(byAlias)}, workflow ${fmt(byWorkflow)}${s.stagesServed ? `, MLflow stage ${fmt(byMlflowStage)}` : ''}`);
    }
    for (const v of m.versions) {
      if (!s.runs[key(m.model, v.version)]) continue;
      lifecycles++;
      const id = `${m.model} v${v.version}`;
      // Completed without a failed workflow task, its query only slow (a worker replaying under load): not stuck.
      if (v.phase === undefined && v.diagnosis?.verdict === 'completed') continue;
      if (v.phase === undefined) {
        stuck.push(`${id}: state unreadable${v.diagnosis ? ` [${v.diagnosis.verdict}: ${v.diagnosis.text}]` : ''}`);
        continue;
      }
      if (v.phase !== 'done' && v.phase !== 'production') stuck.push(`${id}: ${v.phase}`);
      const serving = v.aliases.includes('production');
      if (v.phase === 'production') {
        if (!serving || v.stage !== 'Production') agree.push(`${id}: workflow production, MLflow stage ${v.stage}, alias ${serving ? 'production' : 'none'}`);
      } else if (v.phase === 'done') {
        if (serving || v.stage === 'Production') agree.push(`${id}: workflow done (${v.outcome}), MLflow stage ${v.stage}${serving ? ', alias production' : ''}`);
        const tagged = v.tags['modelgate.outcome'];
        if (tagged !== undefined && tagged !== v.outcome) agree.push(`${id}: workflow outcome ${v.outcome}, tag modelgate.outcome=${tagged}`);
        if ((v.outcome === 'superseded' || v.outcome === 'rolled_back') && v.stage !== 'Archived') agree.push(`${id}: ${v.outcome} but stage ${v.stage}`);
      }
    }
  }
  const dup = duplicateSideEffects(s);
  return [
    row('exactly one Production per model (stage, alias, workflow agree)', oneProduction, `${s.models.length} models`),
    row("MLflow stage/alias/tags agree with each workflow's state", agree, `${lifecycles} lifecycles`),
    row('no workflow stuck (each done or the serving production)', stuck, `${lifecycles} lifecycles`),
    row(
      'no duplicate side effect (per run: each transition, alias move, tag value once; a lock token rewritten with the same value by one retried grant activity is idempotent)',
      dup.examples,
      `${s.applied.length} applied writes${dup.idempotentRetries.length ? `; ${dup.idempotentRetries.length} idempotent lock-token rewrite(s) by a retried grant activity: ${dup.idempotentRetries.slice(0, 3).join('; ')}` : ''}`,
      dup.count,
    ),
  ];
}

function row(name: string, violations: string[], checked: string, count = violations.length): InvariantRow {
  return { name, pass: count === 0, detail: count === 0 ? checked : `${count} violation(s): ${violations.slice(0, 3).join('; ')}` };
}

function fmt(xs: number[]): string {
  return xs.length ? xs.map((x) => `v${x}`).join('+') : 'none';
}

export function formatTable(rows: InvariantRow[]): string[] {
  const w = Math.max(...rows.map((r) => r.name.length));
  return rows.map((r) => `${r.pass ? 'PASS' : 'FAIL'}  ${r.name.padEnd(w)}  ${r.detail}`);
}
