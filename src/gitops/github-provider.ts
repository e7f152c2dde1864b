/**
 * GitHub provider: a promotion is a real pull request from `modelgate/<model>/v<version>` into the base branch.
 *
 * Idempotency: every operation first looks the PR up by its head and base
 * (`GET /pulls?head=owner:branch&base=<base>&state=all`) and returns what it finds (the activity layer adopts it
 * only when its marker verifies); creating a ref that exists (422 "Reference already exists") or a PR that
 * exists (422 "A pull request already exists") is answered by reading it. The manifest commit is made with the
 * contents API on the branch, skipped when the branch already holds the wanted content; an existing branch is
 * built on only when it is modelgate's own (ProposedChange.isOwnChange) or holds nothing but base commits.
 */
import { ApplicationFailure } from '@temporalio/common';
import { foreignPullRequest, permanent, GitopsFailureTypes as T } from './errors.js';
import { rateLimitedFailure, type GitHubClient } from './github-client.js';
import { markerPrefix } from './marker.js';
import { OWN_COMMIT_LOOKBACK } from './provider.js';
import type {
  BaseCommit,
  BaseCommitOutcome,
  ChecksState,
  CloseRequest,
  FileAtRef,
  GitopsProvider,
  MergeOutcome,
  MergeRequest,
  ProposedChange,
  PullRequestStatus,
  RevertChange,
} from './provider.js';

export interface GitHubProviderOptions {
  client: GitHubClient;
  /** `owner/name`. */
  repo: string;
  /** Extra merge attempts after 409 "Head branch was modified" with an unchanged head (default 3). */
  maxMergeConflictRetries?: number;
}

interface PullSummary {
  number: number;
  state: string;
  merged_at: string | null;
  html_url: string;
  title: string;
  body?: string | null;
  head: { ref: string; sha: string };
  base: { ref: string };
}

const CLOSE_MARKER = '<!-- modelgate:closed -->';
const SHA = /^[0-9a-f]{40}$/i;

export class GitHubProvider implements GitopsProvider {
  readonly kind = 'github' as const;
  private readonly owner: string;
  private readonly repo: string;
  private readonly gh: GitHubClient;
  private readonly maxConflictRetries: number;

  constructor(opts: GitHubProviderOptions) {
    const m = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/.exec(opts.repo);
    if (!m) throw permanent(T.GitopsRequestInvalid, `gitops.repo must be owner/name for the github provider, got ${JSON.stringify(opts.repo)}`);
    this.owner = m[1]!;
    this.repo = m[2]!;
    this.gh = opts.client;
    this.maxConflictRetries = opts.maxMergeConflictRetries ?? 3;
  }

  openPromotion(change: ProposedChange): Promise<PullRequestStatus> {
    return this.guard('open the pull request', () => this.propose(change));
  }

  openRevert(change: RevertChange): Promise<PullRequestStatus> {
    return this.guard('open the revert pull request', () => this.propose(change, change.mergeSha));
  }

  getPullRequest(branch: string, baseBranch: string): Promise<PullRequestStatus | null> {
    return this.guard('read the pull request', async () => {
      const pr = await this.findPull(branch, baseBranch);
      return pr ? this.status(pr, baseBranch) : null;
    });
  }

  merge(req: MergeRequest): Promise<MergeOutcome> {
    return this.guard('merge the pull request', async () => {
      for (let attempt = 0; ; attempt++) {
        const pr = await this.findPull(req.branch, req.baseBranch);
        if (!pr) throw permanent(T.PullRequestNotFound, `no pull request from ${req.branch} in ${this.owner}/${this.repo}`);
        if (pr.merged_at) {
          const full = await this.fullPull(pr.number);
          return { mergeSha: full.merge_commit_sha ?? '', mergedBy: full.merged_by?.login, headSha: full.head.sha, alreadyMerged: true };
        }
        if (pr.state === 'closed') {
          const closedBy = await this.closedBy(pr.number);
          throw permanent(T.PullRequestClosed, `${pr.html_url} was closed${closedBy ? ` by ${closedBy}` : ''} and cannot be merged`);
        }
        if (req.expectedHeadSha && pr.head.sha !== req.expectedHeadSha) throw headChanged(pr, req.expectedHeadSha);
        const trailers = [...req.approvedBy.map((a) => `Approved-by: ${oneLine(a)}`), `Modelgate-Branch: ${req.branch}`];
        try {
          const res = await this.gh.rest.pulls.merge({
            owner: this.owner,
            repo: this.repo,
            pull_number: pr.number,
            sha: req.expectedHeadSha ?? pr.head.sha,
            merge_method: req.method,
            commit_title: `${req.title} (#${pr.number})`,
            commit_message: trailers.join('\n'),
          });
          return { mergeSha: res.data.sha, headSha: req.expectedHeadSha ?? pr.head.sha, alreadyMerged: false };
        } catch (err) {
          const status = statusOf(err);
          if (status === 405) {
            throw permanent(
              T.PullRequestNotMergeable,
              `GitHub will not merge ${pr.html_url}: ${messageOf(err)}. A human must act (resolve conflicts, fix failing required checks or add required reviews); the promotion waits.`,
            );
          }
          // 409: the head moved between our read and the merge. Re-read: a new head means re-approval,
          // the same head (GitHub still settling) is retried a bounded number of times.
          if (status === 409 && attempt < this.maxConflictRetries) continue;
          throw err;
        }
      }
    });
  }

  close(req: CloseRequest): Promise<PullRequestStatus | null> {
    return this.guard('close the pull request', async () => {
      const pr = await this.findPull(req.branch, req.baseBranch);
      if (!pr) return null;
      if (pr.state !== 'open') return this.status(pr, req.baseBranch);
      const comments = await this.gh.paginate(this.gh.rest.issues.listComments, {
        owner: this.owner,
        repo: this.repo,
        issue_number: pr.number,
        per_page: 100,
      });
      // The comment is written once even when this activity is retried after a crash.
      if (!comments.some((c) => c.body?.includes(CLOSE_MARKER))) {
        await this.gh.rest.issues.createComment({
          owner: this.owner,
          repo: this.repo,
          issue_number: pr.number,
          body: `Closed by modelgate${req.by ? ` for ${oneLine(req.by)}` : ''}: ${req.reason}\n\n${CLOSE_MARKER}`,
        });
      }
      const res = await this.gh.rest.pulls.update({ owner: this.owner, repo: this.repo, pull_number: pr.number, state: 'closed' });
      return this.status(res.data, req.baseBranch);
    });
  }

  comment(req: { branch: string; baseBranch: string; key: string; body: string }): Promise<boolean> {
    return this.guard('comment on the pull request', async () => {
      const pr = await this.findPull(req.branch, req.baseBranch);
      if (!pr || pr.state !== 'open') return false;
      const marker = `<!-- modelgate:${req.key.replace(/[^A-Za-z0-9._-]/g, '')} -->`;
      const comments = await this.gh.paginate(this.gh.rest.issues.listComments, { owner: this.owner, repo: this.repo, issue_number: pr.number, per_page: 100 });
      if (!comments.some((c) => c.body?.includes(marker))) {
        await this.gh.rest.issues.createComment({ owner: this.owner, repo: this.repo, issue_number: pr.number, body: `${req.body}\n\n${marker}` });
      }
      return true;
    });
  }

  readFile(path: string, ref: string): Promise<FileAtRef | null> {
    return this.guard('read the manifest', async () => {
      const commit = SHA.test(ref) ? ref : await this.branchHead(ref);
      if (!commit) throw permanent(T.RefNotFound, `no branch ${ref} in ${this.owner}/${this.repo}`);
      const file = await this.getFile(path, commit);
      return file ? { content: file.content, commit } : null;
    });
  }

  commitOnBase(change: BaseCommit): Promise<BaseCommitOutcome> {
    return this.guard(`commit on ${change.baseBranch}`, async () => {
      for (let attempt = 0; ; attempt++) {
        const base = await this.branchHead(change.baseBranch);
        if (!base) throw permanent(T.BaseBranchNotFound, `branch ${change.baseBranch} does not exist in ${this.owner}/${this.repo}`);
        const own = await this.ownCommitOnBase(base, change);
        if (own) return { commit: own.sha, url: own.url, alreadyApplied: true };
        const current = await this.getFile(change.path, base);
        if (!current) throw permanent(T.ManifestNotFound, `${change.path} does not exist on ${change.baseBranch} of ${this.owner}/${this.repo}`);
        const r = change.render(current.content);
        if (r.content === current.content) {
          throw permanent(T.ManifestUnchanged, `${change.path} on ${change.baseBranch} already has this content; there is nothing to commit`);
        }
        try {
          // The contents API commits on the branch's head only if the file is still the blob we read (else 409).
          const res = await this.gh.rest.repos.createOrUpdateFileContents({
            owner: this.owner, repo: this.repo, path: change.path, branch: change.baseBranch, message: r.commitMessage,
            content: Buffer.from(r.content, 'utf8').toString('base64'), sha: current.sha,
          });
          const sha = res.data.commit.sha;
          if (!sha) throw new Error(`GitHub did not return the commit of ${change.path} on ${change.baseBranch}`);
          return { commit: sha, url: res.data.commit.html_url ?? `https://github.com/${this.owner}/${this.repo}/commit/${sha}`, alreadyApplied: false };
        } catch (err) {
          // A protected base answers 409 too ("Changes must be made through a pull request", required checks).
          if (statusOf(err) === 409 && /protected|pull request|status check|review/i.test(messageOf(err))) {
            throw permanent(T.GitopsForbidden, `${this.owner}/${this.repo} refused a direct commit on ${change.baseBranch}: ${messageOf(err)}`);
          }
          // The file changed since we read it (or our own earlier request landed after all): look again.
          if (statusOf(err) === 409 && attempt < 3) continue;
          throw err;
        }
      }
    });
  }

  /** The newest of the base's latest commits of the file that carries this change's valid marker. */
  private async ownCommitOnBase(base: string, change: BaseCommit): Promise<{ sha: string; url: string } | undefined> {
    const res = await this.gh.rest.repos.listCommits({ owner: this.owner, repo: this.repo, sha: base, path: change.path, per_page: OWN_COMMIT_LOOKBACK });
    for (const c of res.data) {
      if (!c.commit.message.includes(markerPrefix(change.key))) continue;
      const file = await this.getFile(change.path, c.sha);
      if (change.isOwnChange({ message: c.commit.message, content: file?.content })) return { sha: c.sha, url: c.html_url };
    }
    return undefined;
  }

  // ---- internals ----

  private async propose(change: ProposedChange, revertOf?: string): Promise<PullRequestStatus> {
    const existing = await this.findPull(change.branch, change.baseBranch);
    if (existing) return this.status(existing, change.baseBranch);

    const base = await this.branchHead(change.baseBranch);
    if (!base) throw permanent(T.BaseBranchNotFound, `branch ${change.baseBranch} does not exist in ${this.owner}/${this.repo}`);
    const current = await this.getFile(change.path, base);
    if (!current && !change.mayBeMissing) {
      throw permanent(T.ManifestNotFound, `${change.path} does not exist on ${change.baseBranch} of ${this.owner}/${this.repo}`);
    }
    let beforeMerge: string | undefined;
    if (revertOf) {
      const parent = await this.parentOf(revertOf);
      beforeMerge = (await this.getFile(change.path, parent))?.content;
      if (beforeMerge === undefined) throw permanent(T.RevertNotApplicable, `${change.path} did not exist before ${revertOf}`);
    }
    const r = change.render(current?.content ?? '', beforeMerge);
    if (r.content === (current?.content ?? null)) {
      throw permanent(T.ManifestUnchanged, `${change.path} on ${change.baseBranch} already has this content; there is nothing to propose`);
    }

    // Branch: create it at the base, or reuse it — only when an earlier attempt of modelgate made it (its head
    // is modelgate's own change commit, or it holds nothing but base commits). A branch someone pushed in
    // advance is never built on: its commits would ride along into the PR.
    const existingHead = await this.branchHead(change.branch);
    if (!existingHead) {
      try {
        await this.gh.rest.git.createRef({ owner: this.owner, repo: this.repo, ref: `refs/heads/${change.branch}`, sha: base });
      } catch (err) {
        if (!(statusOf(err) === 422 && /already exists/i.test(messageOf(err)))) throw err;
        // Created concurrently: check it like any existing branch.
        await this.checkExistingBranch(change, base, (await this.branchHead(change.branch)) ?? base);
      }
    } else {
      await this.checkExistingBranch(change, base, existingHead);
    }
    await this.writeFile(change.branch, change.path, r.content, r.commitMessage);

    try {
      const res = await this.gh.rest.pulls.create({
        owner: this.owner,
        repo: this.repo,
        head: change.branch,
        base: change.baseBranch,
        title: r.title,
        body: r.body,
      });
      return this.status(res.data, change.baseBranch);
    } catch (err) {
      if (statusOf(err) === 422 && /pull request already exists/i.test(messageOf(err))) {
        const adopted = await this.findPull(change.branch, change.baseBranch);
        if (adopted) return this.status(adopted, change.baseBranch);
      }
      if (statusOf(err) === 422) throw permanent(T.GitopsRequestInvalid, `GitHub refused the pull request from ${change.branch}: ${messageOf(err)}`);
      throw err;
    }
  }

  private async checkExistingBranch(change: ProposedChange, base: string, head: string): Promise<void> {
    if (head === base) return;
    const commit = await this.gh.rest.git.getCommit({ owner: this.owner, repo: this.repo, commit_sha: head });
    const file = await this.getFile(change.path, head);
    if (change.isOwnChange({ message: commit.data.message, content: file?.content })) return;
    // Created at an older base and never written to (a crash between creating the ref and the commit).
    const cmp = await this.gh.rest.repos.compareCommitsWithBasehead({ owner: this.owner, repo: this.repo, basehead: `${base}...${head}`, per_page: 1 });
    if (cmp.data.status === 'behind' || cmp.data.status === 'identical') return;
    throw foreignPullRequest(change.branch);
  }

  /**
   * Put `content` at `path` on the branch unless it is already there (null: delete the file unless it is
   * already gone); retries a concurrent update (409).
   */
  private async writeFile(branch: string, path: string, content: string | null, message: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const onBranch = await this.getFile(path, branch);
      if (content === null ? !onBranch : onBranch?.content === content) return;
      try {
        if (content === null) {
          await this.gh.rest.repos.deleteFile({ owner: this.owner, repo: this.repo, path, branch, message, sha: onBranch!.sha });
          return;
        }
        await this.gh.rest.repos.createOrUpdateFileContents({
          owner: this.owner,
          repo: this.repo,
          path,
          branch,
          message,
          content: Buffer.from(content, 'utf8').toString('base64'),
          ...(onBranch ? { sha: onBranch.sha } : {}),
        });
        return;
      } catch (err) {
        if (statusOf(err) === 409 && attempt < 3) continue;
        throw err;
      }
    }
  }

  private async status(pr: PullSummary, baseBranch: string): Promise<PullRequestStatus> {
    const common = {
      provider: 'github' as const,
      number: pr.number,
      url: pr.html_url,
      branch: pr.head.ref,
      baseBranch: pr.base.ref ?? baseBranch,
      headSha: pr.head.sha,
      title: pr.title,
      body: pr.body ?? undefined,
    };
    if (pr.merged_at) {
      const full = await this.fullPull(pr.number);
      // The head GitHub reports for a merged PR is the head that was merged; merged_by comes from this API read.
      return { ...common, state: 'merged', headSha: full.head.sha, mergeSha: full.merge_commit_sha ?? undefined, mergedBy: full.merged_by?.login, checks: 'none' };
    }
    if (pr.state === 'closed') return { ...common, state: 'closed', closedBy: await this.closedBy(pr.number), checks: 'none' };
    return { ...common, state: 'open', checks: await this.checks(pr.head.sha) };
  }

  /** The newest PR from the branch into the base branch (any state); PRs from it into other bases are not ours. */
  private async findPull(branch: string, baseBranch: string): Promise<PullSummary | undefined> {
    const res = await this.gh.rest.pulls.list({
      owner: this.owner,
      repo: this.repo,
      head: `${this.owner}:${branch}`,
      base: baseBranch,
      state: 'all',
      sort: 'created',
      direction: 'desc',
      per_page: 10,
    });
    return res.data.filter((p) => p.head.ref === branch && p.base.ref === baseBranch).sort((a, b) => b.number - a.number)[0];
  }

  private async fullPull(number: number) {
    return (await this.gh.rest.pulls.get({ owner: this.owner, repo: this.repo, pull_number: number })).data;
  }

  private async closedBy(number: number): Promise<string | undefined> {
    const issue = await this.gh.rest.issues.get({ owner: this.owner, repo: this.repo, issue_number: number });
    return issue.data.closed_by?.login;
  }

  /** Combined commit statuses and check runs of the head commit. */
  private async checks(sha: string): Promise<ChecksState> {
    const [combined, runs] = await Promise.all([
      this.gh.rest.repos.getCombinedStatusForRef({ owner: this.owner, repo: this.repo, ref: sha, per_page: 100 }),
      this.gh.rest.checks.listForRef({ owner: this.owner, repo: this.repo, ref: sha, per_page: 100 }),
    ]);
    const failedRun = (c: string | null) => c !== null && !['success', 'neutral', 'skipped'].includes(c);
    const statuses = combined.data.total_count > 0 ? combined.data.state : undefined;
    const checkRuns = runs.data.check_runs;
    if (statuses === 'failure' || statuses === 'error' || checkRuns.some((r) => r.status === 'completed' && failedRun(r.conclusion))) {
      return 'failure';
    }
    if (statuses === 'pending' || checkRuns.some((r) => r.status !== 'completed')) return 'pending';
    return statuses || checkRuns.length > 0 ? 'success' : 'none';
  }

  private async branchHead(branch: string): Promise<string | undefined> {
    try {
      const res = await this.gh.rest.git.getRef({ owner: this.owner, repo: this.repo, ref: `heads/${branch}` });
      return res.data.object.sha;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  private async parentOf(sha: string): Promise<string> {
    try {
      const res = await this.gh.rest.git.getCommit({ owner: this.owner, repo: this.repo, commit_sha: sha });
      const parent = res.data.parents[0]?.sha;
      if (!parent) throw permanent(T.RevertNotApplicable, `commit ${sha} has no parent to revert to`);
      return parent;
    } catch (err) {
      if (statusOf(err) === 404 || statusOf(err) === 422) throw permanent(T.MergeCommitNotFound, `commit ${sha} does not exist in ${this.owner}/${this.repo}`);
      throw err;
    }
  }

  private async getFile(path: string, ref: string): Promise<{ content: string; sha: string } | undefined> {
    try {
      const res = await this.gh.rest.repos.getContent({ owner: this.owner, repo: this.repo, path, ref });
      const data = res.data;
      if (Array.isArray(data) || data.type !== 'file' || !('content' in data)) {
        throw permanent(T.ManifestInvalid, `${path} at ${ref} is not a file`);
      }
      if (data.encoding !== 'base64') throw permanent(T.ManifestInvalid, `${path} at ${ref} is too large for the contents API`);
      return { content: Buffer.from(data.content, 'base64').toString('utf8'), sha: data.sha };
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  /** Maps HTTP failures to permanent / rate-limit / transient failures, with messages free of credentials. */
  private async guard<R>(what: string, fn: () => Promise<R>): Promise<R> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ApplicationFailure) throw err;
      const status = statusOf(err);
      if (status === undefined) throw err;
      const where = `${this.owner}/${this.repo}`;
      const msg = `could not ${what} in ${where}: GitHub answered ${status} ${messageOf(err)}`;
      const headers = headersOf(err);
      if ((status === 403 || status === 429) && (headers['x-ratelimit-remaining'] === '0' || /rate limit/i.test(messageOf(err)))) {
        const reset = Number(headers['x-ratelimit-reset']);
        const retryAfter = Number(headers['retry-after']);
        const waitMs = Number.isFinite(reset) && reset > 0 ? reset * 1000 - Date.now() : Number.isFinite(retryAfter) ? retryAfter * 1000 : 60_000;
        throw rateLimitedFailure(waitMs);
      }
      if (status === 401) throw permanent(T.GitopsAuthFailed, `${msg} (check GITHUB_TOKEN or the GitHub App credentials)`);
      if (status === 403) throw permanent(T.GitopsForbidden, `${msg} (the token or app lacks permission)`);
      if (status === 404) throw permanent(T.GitopsNotFound, `${msg} (repository or branch not found, or not visible to these credentials)`);
      if (status === 422) throw permanent(T.GitopsRequestInvalid, msg);
      throw new Error(msg);
    }
  }
}

function headChanged(pr: PullSummary, expected: string): ApplicationFailure {
  return permanent(
    T.PullRequestHeadChanged,
    `the head of ${pr.html_url} is now ${pr.head.sha}, but ${expected} was approved: the change must be approved again`,
  );
}

function statusOf(err: unknown): number | undefined {
  const s = (err as { status?: unknown } | null)?.status;
  return typeof s === 'number' ? s : undefined;
}

function headersOf(err: unknown): Record<string, string | undefined> {
  return ((err as { response?: { headers?: Record<string, string> } } | null)?.response?.headers ?? {});
}

/** GitHub's own message (and validation errors), never request details such as headers. */
function messageOf(err: unknown): string {
  const data = (err as { response?: { data?: { message?: string; errors?: Array<{ message?: string; code?: string }> } } } | null)?.response?.data;
  const parts = [data?.message, ...(data?.errors ?? []).map((e) => e.message ?? e.code)].filter(Boolean);
  return parts.length ? parts.join(': ') : err instanceof Error ? err.message.split('\n')[0] : String(err);
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').trim();
}
