/**
 * Plain git provider: any git remote (URL or local bare repository) where a "pull request" is a branch.
 *
 * Representation, all discoverable from the remote alone (so a crashed worker, or a second worker with an
 * empty cache, sees exactly what the first did):
 * - open:   `refs/heads/<branch>` exists; its commit message is the PR title and body.
 * - merged: a commit reachable from the base branch carries the trailer `Modelgate-Branch: <branch>` (written
 *           by modelgate, with `Approved-by:`, `Merged-by:` and `Modelgate-Head:` trailers), or the branch's own
 *           commit (the one carrying its marker) is contained in the base branch (merged by a person with plain
 *           git; mergedBy = that committer's name, which is only text: anyone can write any name).
 * - closed: `refs/modelgate/closed/<branch>` exists; it points at a commit on top of the branch head whose
 *           message holds the reason and a `Closed-by:` trailer.
 *
 * Commits are built with plumbing in a private bare cache (no working tree) and exist for others only once
 * pushed; a push is the single atomic step of every operation. A push rejected because someone else moved the
 * ref is answered by fetching and re-deciding, a bounded number of times.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { permanent, redactUrl, GitopsFailureTypes as T } from './errors.js';
import { createGitRunner, isRemoteUrl, lastLines, type GitIdentity, type GitRunner } from './git-cli.js';
import { GitPlumbing, trailer } from './git-plumbing.js';
import { markerPrefix } from './marker.js';
import { OWN_COMMIT_LOOKBACK } from './provider.js';
import type {
  BaseCommit,
  BaseCommitOutcome,
  CloseRequest,
  FileAtRef,
  GitopsProvider,
  MergeOutcome,
  MergeRequest,
  ProposedChange,
  PullRequestStatus,
  RevertChange,
} from './provider.js';

export { initLocalGitopsRepo, type LocalGitopsRepo } from './local-repo.js';

export interface GitProviderOptions {
  /** A remote URL (https://, ssh://, git@host:path, file://) or a path to a (bare) repository. */
  repo: string;
  /** Parent folder of the provider's private bare cache. */
  workdir: string;
  identity: GitIdentity;
  /** Injected for tests; defaults to the `git` CLI. */
  runGit?: GitRunner;
  /** Push attempts when the base branch keeps moving (default 5). */
  maxPushAttempts?: number;
}

const HEADS = 'refs/remotes/origin/';
const CLOSED = 'refs/remotes/origin-modelgate/closed/';

type PushResult = 'ok' | 'rejected';

export class GitProvider implements GitopsProvider {
  readonly kind = 'git' as const;
  private readonly remote: string;
  private readonly display: string;
  private readonly git: GitPlumbing;
  private readonly identity: GitIdentity;
  private readonly maxPushAttempts: number;
  private ready?: Promise<void>;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(opts: GitProviderOptions) {
    this.remote = isRemoteUrl(opts.repo) ? opts.repo : resolve(opts.repo);
    this.display = redactUrl(this.remote);
    const id = createHash('sha256').update(this.remote).digest('hex').slice(0, 12);
    const name = basename(this.remote.replace(/\/+$/, '').replace(/\.git$/, '')).replace(/[^A-Za-z0-9._-]/g, '_') || 'repo';
    this.git = new GitPlumbing(join(resolve(opts.workdir), `${name}-${id}.git`), opts.runGit ?? createGitRunner({ identity: opts.identity }));
    this.identity = opts.identity;
    this.maxPushAttempts = opts.maxPushAttempts ?? 5;
  }

  openPromotion(change: ProposedChange): Promise<PullRequestStatus> {
    return this.exclusive(() => this.propose(change));
  }

  openRevert(change: RevertChange): Promise<PullRequestStatus> {
    return this.exclusive(() => this.propose(change, change.mergeSha));
  }

  getPullRequest(branch: string, baseBranch: string): Promise<PullRequestStatus | null> {
    return this.exclusive(async () => {
      await this.fetch();
      return this.status(branch, baseBranch);
    });
  }

  merge(req: MergeRequest): Promise<MergeOutcome> {
    return this.exclusive(async () => {
      for (let attempt = 1; ; attempt++) {
        await this.fetch();
        const st = await this.status(req.branch, req.baseBranch);
        if (!st) throw permanent(T.PullRequestNotFound, `no branch ${req.branch} in ${this.display}`);
        if (st.state === 'merged') {
          return { mergeSha: st.mergeSha!, mergedBy: st.mergedBy, headSha: st.headSha, ...(st.mergeSeal ? { mergeSeal: st.mergeSeal } : {}), alreadyMerged: true };
        }
        if (st.state === 'closed') {
          throw permanent(T.PullRequestClosed, `${req.branch} was closed${st.closedBy ? ` by ${st.closedBy}` : ''} and cannot be merged`);
        }
        if (req.expectedHeadSha && st.headSha !== req.expectedHeadSha) {
          throw permanent(
            T.PullRequestHeadChanged,
            `${req.branch} head is ${st.headSha}, but ${req.expectedHeadSha} was approved: the change must be approved again`,
          );
        }
        const base = await this.baseCommit(req.baseBranch);
        const tree = await this.mergeTree(base, st.headSha, req.branch, req.baseBranch);
        const parents = req.method === 'merge' ? [base, st.headSha] : [base];
        const intro = req.method === 'merge' ? `Merge branch '${req.branch}' into ${req.baseBranch}\n\n` : '';
        const seal = req.seal?.({ headSha: st.headSha, parentSha: base });
        const trailers = [
          trailer('Modelgate-Branch', req.branch),
          trailer('Modelgate-Head', st.headSha),
          ...req.approvedBy.map((a) => trailer('Approved-by', a)),
          trailer('Merged-by', this.identity.name),
          ...(seal ? [trailer('Modelgate-Seal', seal)] : []),
        ];
        const commit = await this.git.commitTree(tree, parents, `${req.title}\n\n${intro}${trailers.join('\n')}\n`);
        if ((await this.push(commit, `refs/heads/${req.baseBranch}`)) === 'ok') {
          const mergeSeal = seal ? { mergeSeal: { value: seal, parentSha: base } } : {};
          return { mergeSha: commit, mergedBy: this.identity.name, headSha: st.headSha, ...mergeSeal, alreadyMerged: false };
        }
        // Someone pushed to the base branch in between: fetch, re-check and merge again on the new base.
        if (attempt >= this.maxPushAttempts) {
          throw new Error(`${req.baseBranch} of ${this.display} kept moving; gave up after ${attempt} merge attempts`);
        }
      }
    });
  }

  commitOnBase(change: BaseCommit): Promise<BaseCommitOutcome> {
    return this.exclusive(async () => {
      for (let attempt = 1; ; attempt++) {
        await this.fetch();
        const base = await this.baseCommit(change.baseBranch);
        const own = await this.ownCommitOnBase(base, change);
        if (own) return { commit: own, url: `${this.display}@${own}`, alreadyApplied: true };
        const file = await this.git.readBlob(base, change.path);
        if (!file) throw permanent(T.ManifestNotFound, `${change.path} does not exist on ${change.baseBranch} of ${this.display}`);
        const r = change.render(file.content);
        if (r.content === file.content) {
          throw permanent(T.ManifestUnchanged, `${change.path} on ${change.baseBranch} already has this content; there is nothing to commit`);
        }
        const commit = await this.git.commitFiles({ base, files: [{ path: change.path, content: r.content, mode: file.mode }], parents: [base], message: r.commitMessage });
        if ((await this.push(commit, `refs/heads/${change.baseBranch}`)) === 'ok') return { commit, url: `${this.display}@${commit}`, alreadyApplied: false };
        // Someone pushed to the base in between: fetch and look again (our own commit may be the one that landed).
        if (attempt >= this.maxPushAttempts) throw new Error(`${change.baseBranch} of ${this.display} kept moving; gave up after ${attempt} commit attempts`);
      }
    });
  }

  /**
   * The newest of the base's own latest commits of the file (first parent: not a merged branch's) that carries
   * this change's valid marker.
   */
  private async ownCommitOnBase(base: string, change: BaseCommit): Promise<string | undefined> {
    const out = await this.git.ok(['log', '-z', '--first-parent', `-n${OWN_COMMIT_LOOKBACK}`, '--fixed-strings', `--grep=${markerPrefix(change.key)}`, '--format=%H%x1f%B', base, '--', change.path]);
    for (const record of out.split('\0')) {
      const [sha, message] = record.split('\x1f');
      if (!sha?.trim() || message === undefined) continue;
      const blob = await this.git.readBlob(sha.trim(), change.path);
      if (change.isOwnChange({ message, content: blob?.content })) return sha.trim();
    }
    return undefined;
  }

  /** A plain git remote has no PR conversation: the lifecycle's timeline and MLflow tags carry the message. */
  comment(): Promise<boolean> {
    return Promise.resolve(false);
  }

  close(req: CloseRequest): Promise<PullRequestStatus | null> {
    return this.exclusive(async () => {
      await this.fetch();
      const st = await this.status(req.branch, req.baseBranch);
      if (!st || st.state !== 'open') return st;
      const tree = (await this.git.ok(['rev-parse', `${st.headSha}^{tree}`])).trim();
      const by = req.by ?? this.identity.name;
      const message = `Close ${req.branch}\n\n${req.reason}\n\n${trailer('Modelgate-Closed', req.branch)}\n${trailer('Closed-by', by)}\n`;
      const marker = await this.git.commitTree(tree, [st.headSha], message);
      await this.push(marker, `refs/modelgate/closed/${req.branch}`);
      await this.fetch();
      return this.status(req.branch, req.baseBranch);
    });
  }

  readFile(path: string, ref: string): Promise<FileAtRef | null> {
    return this.exclusive(async () => {
      await this.fetch();
      const commit = (await this.git.resolve(`${HEADS}${ref}`)) ?? (/^[0-9a-f]{7,40}$/i.test(ref) ? await this.git.resolve(ref) : undefined);
      if (!commit) throw permanent(T.RefNotFound, `no branch or commit ${ref} in ${this.display}`);
      const blob = await this.git.readBlob(commit, path);
      return blob ? { content: blob.content, commit } : null;
    });
  }

  // ---- internals ----

  private async propose(change: ProposedChange, revertOf?: string): Promise<PullRequestStatus> {
    await this.fetch();
    const existing = await this.status(change.branch, change.baseBranch);
    if (existing) return existing;
    const base = await this.baseCommit(change.baseBranch);
    const file = await this.git.readBlob(base, change.path);
    if (!file && !change.mayBeMissing) throw permanent(T.ManifestNotFound, `${change.path} does not exist on ${change.baseBranch} of ${this.display}`);
    let beforeMerge: string | undefined;
    if (revertOf) {
      const merge = await this.git.resolve(revertOf);
      if (!merge) throw permanent(T.MergeCommitNotFound, `commit ${revertOf} does not exist in ${this.display}`);
      const parent = await this.git.resolve(`${merge}^1`);
      beforeMerge = parent ? (await this.git.readBlob(parent, change.path))?.content : undefined;
      if (beforeMerge === undefined) throw permanent(T.RevertNotApplicable, `${change.path} did not exist before ${revertOf}`);
    }
    const r = change.render(file?.content ?? '', beforeMerge);
    if (r.content === (file?.content ?? null)) {
      throw permanent(T.ManifestUnchanged, `${change.path} on ${change.baseBranch} already has this content; there is nothing to propose`);
    }
    // The branch commit is the pull request: its message is the title and the body.
    const commit = await this.git.commitFiles({
      base,
      files: [{ path: change.path, content: r.content, mode: file?.mode }],
      parents: [base],
      message: `${r.title}\n\n${r.body}\n`,
    });
    if ((await this.push(commit, `refs/heads/${change.branch}`)) === 'rejected') {
      // Another worker created the branch first: adopt it.
      await this.fetch();
      const adopted = await this.status(change.branch, change.baseBranch);
      if (adopted) return adopted;
      throw new Error(`push of ${change.branch} to ${this.display} was rejected and the branch is not there`);
    }
    await this.git.ok(['update-ref', `${HEADS}${change.branch}`, commit]);
    return (await this.status(change.branch, change.baseBranch))!;
  }

  private async status(branch: string, baseBranch: string): Promise<PullRequestStatus | null> {
    const url = `${this.display}#${branch}`;
    const head = await this.git.resolve(`${HEADS}${branch}`);
    const base = await this.git.resolve(`${HEADS}${baseBranch}`);
    // The PR text lives in the branch's own commit: the newest one carrying this branch's marker (commits a
    // person added on top have none). Whether the marker is valid is the activity layer's question.
    const own = head ? await this.git.ok(['log', '-1', '--fixed-strings', `--grep=${markerPrefix(branch)}`, '--format=%H%x00%s%x00%b', head]) : '';
    const [ownCommit, subject, body] = own.split('\0');
    const title = subject?.trim() || undefined;
    const common = { provider: 'git' as const, url, branch, baseBranch, checks: 'none' as const, body: body?.trim() || undefined };
    if (base) {
      const merge = await this.findMergeCommit(branch, base);
      if (merge) {
        const mergeSeal = merge.seal && merge.parent ? { mergeSeal: { value: merge.seal, parentSha: merge.parent } } : {};
        return { ...common, state: 'merged', headSha: merge.head ?? head ?? '', mergeSha: merge.sha, mergedBy: merge.mergedBy, ...mergeSeal, title };
      }
      // Merged by a person: the base contains the branch's own commit. The merged head is the newest commit of
      // the branch the base contains (commits pushed to the branch after the merge are not part of it).
      const ownSha = ownCommit?.trim();
      const mergedHead = head && ownSha ? await this.mergeBase(head, base) : undefined;
      if (ownSha && mergedHead && (await this.git.isAncestor(ownSha, mergedHead))) {
        const sha = await this.commitThatMerged(mergedHead, base);
        const mergedBy = (await this.git.ok(['log', '-1', '--format=%cn', sha])).trim();
        return { ...common, state: 'merged', headSha: mergedHead, mergeSha: sha, mergedBy, title };
      }
    }
    const closed = await this.git.resolve(`${CLOSED}${branch}`);
    if (closed) {
      const closedBy = (await this.git.ok(['log', '-1', '--format=%(trailers:key=Closed-by,valueonly,separator=%x2C)', closed])).trim();
      const headAtClose = (await this.git.resolve(`${closed}^1`)) ?? '';
      return { ...common, state: 'closed', headSha: head ?? headAtClose, closedBy: closedBy || undefined, title };
    }
    if (head) return { ...common, state: 'open', headSha: head, title };
    return null;
  }

  /**
   * The commit reachable from the base whose `Modelgate-Branch:` trailer names exactly this branch. Its
   * trailers are only text (anyone can write them); the seal says whether modelgate wrote it.
   */
  private async findMergeCommit(
    branch: string,
    base: string,
  ): Promise<{ sha: string; mergedBy?: string; head?: string; seal?: string; parent?: string } | undefined> {
    const key = (k: string) => `%(trailers:key=${k},valueonly,separator=%x1e)`;
    const fmt = ['%H', '%P', key('Modelgate-Branch'), key('Merged-by'), key('Modelgate-Head'), key('Modelgate-Seal')].join('%x1f');
    const out = await this.git.ok(['log', '-z', '--fixed-strings', `--grep=Modelgate-Branch: ${branch}`, `--format=${fmt}`, base]);
    const first = (v: string | undefined) => v?.split('\x1e')[0]?.trim() || undefined;
    for (const record of out.split('\0')) {
      const [sha, parents, branches, mergedBy, head, seal] = record.trim().split('\x1f');
      if (!sha || !branches) continue;
      if (branches.split('\x1e').some((b) => b.trim() === branch)) {
        return { sha, mergedBy: first(mergedBy), head: first(head), seal: first(seal), parent: parents?.split(' ')[0] || undefined };
      }
    }
    return undefined;
  }

  private async mergeBase(a: string, b: string): Promise<string | undefined> {
    const r = await this.git.run({ gitDir: this.git.gitDir, args: ['merge-base', a, b] });
    return r.code === 0 ? r.stdout.trim() || undefined : undefined;
  }

  /** For a branch merged without modelgate: the oldest first-parent commit of the base that contains the head. */
  private async commitThatMerged(head: string, base: string): Promise<string> {
    const chain = (await this.git.ok(['rev-list', '--first-parent', base])).split('\n').filter(Boolean);
    if (chain.includes(head)) return head;
    const descendants = new Set((await this.git.ok(['rev-list', '--ancestry-path', `${head}..${base}`])).split('\n').filter(Boolean));
    let found = base;
    for (const sha of chain) if (descendants.has(sha)) found = sha;
    return found;
  }

  private async mergeTree(base: string, head: string, branch: string, baseBranch: string): Promise<string> {
    const r = await this.git.run({ gitDir: this.git.gitDir, args: ['merge-tree', '--write-tree', '--name-only', '--no-messages', base, head] });
    if (r.code === 0) return r.stdout.split('\n')[0].trim();
    if (r.code === 1) {
      const files = r.stdout.split('\n').slice(1).filter(Boolean);
      throw permanent(
        T.PullRequestNotMergeable,
        `${branch} conflicts with ${baseBranch} in ${files.join(', ') || 'some files'}: a human must resolve the conflict before it can merge`,
      );
    }
    throw permanent(T.PullRequestNotMergeable, `${branch} cannot be merged into ${baseBranch}: ${lastLines(r.stderr)}`);
  }

  private async baseCommit(baseBranch: string): Promise<string> {
    const base = await this.git.resolve(`${HEADS}${baseBranch}`);
    if (!base) throw permanent(T.BaseBranchNotFound, `branch ${baseBranch} does not exist in ${this.display}`);
    return base;
  }

  /** Push one commit to one ref; 'rejected' when the ref moved (or exists), the only expected race. */
  private async push(commit: string, ref: string): Promise<PushResult> {
    const r = await this.git.run({ gitDir: this.git.gitDir, args: ['push', '--porcelain', '--quiet', this.remote, `${commit}:${ref}`] });
    if (r.code === 0) return 'ok';
    const out = `${r.stdout}\n${r.stderr}`;
    // Lost races: the ref moved or appeared between our fetch and the push (also reported by the receiving
    // side as "cannot lock ref … but expected …" when two pushes overlap).
    if (/\[rejected\]|non-fast-forward|fetch first|already exists|cannot lock ref|but expected|failed to update ref/.test(out)) return 'rejected';
    if (/\[remote rejected\]/.test(out)) {
      throw permanent(T.GitopsForbidden, redactUrl(`${this.display} refused the push to ${ref}: ${lastLines(out, 2)}`));
    }
    throw new Error(redactUrl(`git push to ${this.display} failed (exit ${r.code}): ${lastLines(out)}`));
  }

  private async fetch(): Promise<void> {
    await this.init();
    const r = await this.git.run({
      gitDir: this.git.gitDir,
      args: ['fetch', '--prune', '--no-tags', '--quiet', this.remote, `+refs/heads/*:${HEADS}*`, `+refs/modelgate/*:refs/remotes/origin-modelgate/*`],
    });
    if (r.code !== 0) throw new Error(redactUrl(`git fetch from ${this.display} failed (exit ${r.code}): ${lastLines(r.stderr)}`));
  }

  private init(): Promise<void> {
    this.ready ??= (async () => {
      if (existsSync(join(this.git.gitDir, 'HEAD'))) return;
      await mkdir(this.git.gitDir, { recursive: true });
      await this.git.ok(['init', '--bare', '--quiet', this.git.gitDir]);
    })().catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  /** One operation at a time per cache: git's own ref locks would otherwise fail concurrent fetches. */
  private exclusive<R>(fn: () => Promise<R>): Promise<R> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }
}
