/**
 * A local HTTP double of the GitHub REST API (the part modelgate uses), served under a GitHub Enterprise
 * style prefix (`/api/v3`) on 127.0.0.1 and a free port.
 *
 * It cannot drift from the real API: every request is matched to an operation of GitHub's official OpenAPI
 * description and validated (parameters, body), and every response it sends — including injected faults —
 * is validated against that operation's declared statuses and schemas (rate-limit answers against
 * basic-error). Unknown routes, undocumented routes the double does not implement, bad credentials, and
 * requests sent while a rate limit is in force are recorded in `problems`; tests assert it stays empty.
 *
 * It behaves like GitHub where modelgate depends on it: refs, the contents API (blob SHAs), PRs with live
 * head SHAs, 422 "Reference already exists" / "A pull request already exists", merge with `sha` (409 when the
 * head differs, 405 when not mergeable), combined status and check runs, `closed_by`, comments, compare
 * (ahead/behind/identical/diverged), GitHub App installation tokens (the JWT's RS256 signature is verified).
 */
import { createHash, createPublicKey, randomUUID, verify, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GitHubOpenApi, type Match, type Operation } from './github-openapi.js';

export interface RecordedRequest {
  at: number;
  method: string;
  path: string;
  operationId?: string;
  status?: number;
  body?: unknown;
}

interface Commit {
  sha: string;
  tree: Map<string, string>;
  parents: string[];
  message: string;
  author: string;
  date: string;
}

interface Pull {
  id: number;
  number: number;
  title: string;
  body: string | null;
  head: string;
  base: string;
  /** Base commit when the PR was opened (the merge base of its changes). */
  forkPoint: string;
  frozenHead?: string;
  state: 'open' | 'closed';
  mergedAt?: string;
  mergeSha?: string;
  mergedBy?: string;
  closedBy?: string;
  closedAt?: string;
  user: string;
  createdAt: string;
  updatedAt: string;
  mergeable: boolean;
  comments: Array<{ id: number; body: string; user: string; at: string }>;
}

interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Answers GitHub gives on any endpoint (rate limits, bad credentials): checked against basic-error. */
  crossCutting?: boolean;
}

export interface Fault {
  operationId: string;
  /** Answer with this instead of handling (validated like any response). */
  reply?: Reply;
  /** Handle the request (state changes happen) but never answer: a worker dying mid-call. */
  hang?: boolean;
  /** Runs when the request arrives, before it is handled (e.g. a human pushes at that moment). */
  before?: () => void;
  /** How many matching requests it applies to (default 1). */
  times?: number;
}

export interface DoubleOptions {
  owner: string;
  repo: string;
  /** Token clients must present (`token` auth). */
  token?: string;
  /** GitHub App: its id, installation and public key; installation tokens are issued by the double. */
  app?: { appId: string; installationId: number; publicKeyPem: string };
  /** Files on the default branch `main`. */
  files: Record<string, string>;
  /** Login the token (or app installation) acts as. */
  actor?: string;
}

const PREFIX = '/api/v3';
const OCTOCAT_DOCS = 'https://docs.github.com/rest';

export class GitHubDouble {
  readonly problems: string[] = [];
  readonly requests: RecordedRequest[] = [];
  private readonly api = GitHubOpenApi.load();
  private readonly server: Server;
  private readonly commits = new Map<string, Commit>();
  private readonly refs = new Map<string, string>();
  private readonly pulls: Pull[] = [];
  private readonly statuses = new Map<string, Array<{ state: string; context: string }>>();
  private readonly checkRuns = new Map<string, Array<{ name: string; status: string; conclusion: string | null }>>();
  private readonly faults: Fault[] = [];
  private readonly hung: Array<{ res: ServerResponse; send: () => void }> = [];
  private readonly issuedTokens = new Set<string>();
  private readonly appKey?: KeyObject;
  private limitedUntil = 0;
  private limitSignalledAt = 0;
  private readonly nextLimits: Array<{ kind: 'primary' | 'secondary'; status: 403 | 429; resetAfterSeconds: number; retryAfter?: number; operationId?: string }> = [];
  private limitKind?: { kind: 'primary' | 'secondary'; status: 403 | 429; retryAfter?: number; reset?: number };
  /** Every rate-limit answer sent: when, and until when requests were refused. */
  readonly limits: Array<{ at: number; until: number; kind: 'primary' | 'secondary'; reset?: number }> = [];
  private nextId = 1000;
  private port = 0;

  private constructor(readonly opts: DoubleOptions) {
    this.appKey = opts.app ? createPublicKey(opts.app.publicKeyPem) : undefined;
    const root = this.commit({ parents: [], tree: new Map(Object.entries(opts.files)), message: 'Initial commit', author: 'octo' });
    this.refs.set('heads/main', root);
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  /** The operations the double implements (anything else documented is reported as not implemented). */
  static readonly OPERATIONS = [
    'apps/create-installation-access-token',
    'git/get-ref',
    'git/create-ref',
    'git/get-commit',
    'repos/compare-commits-with-basehead',
    'repos/get-content',
    'repos/create-or-update-file-contents',
    'repos/delete-file',
    'pulls/list',
    'pulls/create',
    'pulls/get',
    'pulls/update',
    'pulls/merge',
    'repos/get-combined-status-for-ref',
    'checks/list-for-ref',
    'issues/get',
    'issues/list-comments',
    'issues/create-comment',
  ];

  /** Load GitHub's description and compile every validator the double uses (seconds; once per process). */
  static warmUp(): void {
    GitHubOpenApi.load().warm(GitHubDouble.OPERATIONS);
  }

  static async start(opts: DoubleOptions): Promise<GitHubDouble> {
    GitHubDouble.warmUp();
    const d = new GitHubDouble(opts);
    await new Promise<void>((resolve) => d.server.listen(0, '127.0.0.1', resolve));
    d.port = (d.server.address() as AddressInfo).port;
    return d;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}${PREFIX}`;
  }

  async close(): Promise<void> {
    for (const h of this.hung) h.res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- test controls ----

  fault(f: Fault): void {
    this.api.operation(f.operationId);
    this.faults.push({ times: 1, ...f });
  }

  /** The next matching request is answered with a primary rate limit resetting after `resetAfterSeconds`. */
  primaryRateLimit(opts: { status: 403 | 429; resetAfterSeconds: number; operationId?: string }): void {
    this.nextLimits.push({ kind: 'primary', ...opts });
  }

  /** The next matching request hits a secondary rate limit (with `retry-after` when given). */
  secondaryRateLimit(opts: { status?: 403 | 429; retryAfter?: number; operationId?: string; minimumWaitSeconds?: number }): void {
    this.nextLimits.push({
      kind: 'secondary',
      status: opts.status ?? 403,
      resetAfterSeconds: opts.retryAfter ?? opts.minimumWaitSeconds ?? 60,
      retryAfter: opts.retryAfter,
      operationId: opts.operationId,
    });
  }

  get hungRequests(): number {
    return this.hung.length;
  }

  /** Send the held answers after all (a slow network rather than a dead worker). */
  releaseHung(): void {
    for (const h of this.hung.splice(0)) if (!h.res.destroyed) h.send();
  }

  pullRequests(): Array<{ number: number; head: string; state: string; merged: boolean; headSha: string; title: string; body: string | null; comments: number }> {
    return this.pulls.map((p) => ({
      number: p.number,
      head: p.head,
      state: p.state,
      merged: !!p.mergedAt,
      headSha: this.headSha(p),
      title: p.title,
      body: p.body,
      comments: p.comments.length,
    }));
  }

  /** The bodies of a PR's comments, oldest first. */
  commentBodies(number: number): string[] {
    return this.pulls.find((p) => p.number === number)?.comments.map((c) => c.body) ?? [];
  }

  branch(name: string): string | undefined {
    return this.refs.get(`heads/${name}`);
  }

  file(ref: string, path: string): string | undefined {
    return this.commits.get(this.resolve(ref) ?? '')?.tree.get(path);
  }

  commitInfo(sha: string): { parents: string[]; message: string } | undefined {
    const c = this.commits.get(sha);
    return c && { parents: c.parents, message: c.message };
  }

  /** Commits reachable from the branch head (first parents only). */
  history(branch: string): string[] {
    const out: string[] = [];
    for (let sha = this.branch(branch); sha; sha = this.commits.get(sha)?.parents[0]) out.push(sha);
    return out;
  }

  /** A human pushes a commit to a branch. */
  push(branch: string, files: Record<string, string>, message = 'Human change'): string {
    const parent = this.refs.get(`heads/${branch}`)!;
    const tree = new Map(this.commits.get(parent)!.tree);
    for (const [p, c] of Object.entries(files)) tree.set(p, c);
    const sha = this.commit({ parents: [parent], tree, message, author: 'human' });
    this.refs.set(`heads/${branch}`, sha);
    return sha;
  }

  /** A person creates a branch (at `from`, default main) and pushes `files` to it; returns the head. */
  humanBranch(name: string, files: Record<string, string>, opts: { from?: string; message?: string } = {}): string {
    const at = this.resolve(opts.from ?? 'main')!;
    this.refs.set(`heads/${name}`, at);
    return Object.keys(files).length ? this.push(name, files, opts.message) : at;
  }

  /** A person opens a pull request from `head` into `base`; returns its number. */
  humanPullRequest(head: string, opts: { base?: string; title?: string; body?: string; login?: string } = {}): number {
    const base = opts.base ?? 'main';
    const pr: Pull = {
      id: this.nextId++,
      number: this.pulls.length + 1,
      title: opts.title ?? `Changes on ${head}`,
      body: opts.body ?? null,
      head,
      base,
      forkPoint: this.refs.get(`heads/${base}`)!,
      state: 'open',
      user: opts.login ?? 'mallory',
      createdAt: now(),
      updatedAt: now(),
      mergeable: true,
      comments: [],
    };
    this.pulls.push(pr);
    return pr.number;
  }

  /** A person edits a PR's description on GitHub. */
  editBody(number: number, body: string): void {
    const pr = this.pulls.find((p) => p.number === number)!;
    pr.body = body;
    pr.updatedAt = now();
  }

  humanMerge(number: number, login: string): string {
    const pr = this.pulls.find((p) => p.number === number)!;
    return this.mergePull(pr, 'merge', `Merge pull request #${number}`, login);
  }

  humanClose(number: number, login: string): void {
    const pr = this.pulls.find((p) => p.number === number)!;
    pr.frozenHead = this.headSha(pr);
    pr.state = 'closed';
    pr.closedBy = login;
    pr.closedAt = now();
  }

  setMergeable(number: number, mergeable: boolean): void {
    this.pulls.find((p) => p.number === number)!.mergeable = mergeable;
  }

  setStatus(sha: string, state: 'pending' | 'success' | 'failure' | 'error', context = 'ci/build'): void {
    this.statuses.set(sha, [...(this.statuses.get(sha) ?? []).filter((s) => s.context !== context), { state, context }]);
  }

  setCheckRun(sha: string, name: string, status: 'queued' | 'in_progress' | 'completed', conclusion: string | null = null): void {
    this.checkRuns.set(sha, [...(this.checkRuns.get(sha) ?? []).filter((r) => r.name !== name), { name, status, conclusion }]);
  }

  // ---- HTTP ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://double');
    const raw = await readBody(req);
    const record: RecordedRequest = { at: Date.now(), method: req.method ?? 'GET', path: url.pathname + url.search };
    this.requests.push(record);
    const send = (r: Reply, op?: Operation) => {
      if (op) {
        for (const p of this.api.validateResponse(op, r.status, r.body, { crossCutting: r.crossCutting })) this.problems.push(`response: ${p}`);
      }
      record.status = r.status;
      const body = r.body === undefined ? '' : JSON.stringify(r.body);
      res.writeHead(r.status, {
        'content-type': 'application/json; charset=utf-8',
        'x-github-request-id': randomUUID(),
        'x-github-api-version-selected': '2022-11-28',
        ...(r.crossCutting ? {} : { 'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': '4000', 'x-ratelimit-reset': String(Math.ceil(Date.now() / 1000) + 3600), 'x-ratelimit-resource': 'core' }),
        ...r.headers,
      });
      res.end(body);
    };

    if (!url.pathname.startsWith(`${PREFIX}/`)) {
      this.problems.push(`request outside the API base URL: ${req.method} ${url.pathname}`);
      return send({ status: 404, body: { message: 'Not Found' } });
    }
    const path = url.pathname.slice(PREFIX.length);
    const match = this.api.match(req.method ?? 'GET', path);
    if (!match) {
      this.problems.push(`unknown route (not in GitHub's OpenAPI description): ${req.method} ${path}`);
      return send({ status: 404, body: { message: 'Not Found', documentation_url: OCTOCAT_DOCS } });
    }
    const op = match.operation;
    record.operationId = op.operationId;
    let body: unknown;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch {
        this.problems.push(`${op.operationId}: request body is not JSON`);
      }
    }
    record.body = body;
    for (const p of this.api.validateRequest(match, url.searchParams, body)) this.problems.push(`request: ${p}`);

    const limited = this.rateLimit(op);
    if (limited) return send(limited, op);
    const auth = this.authenticate(req.headers.authorization, op);
    if (auth) return send(auth, op);

    const fault = this.faults.find((f) => f.operationId === op.operationId && (f.times ?? 1) > 0);
    if (fault) fault.times = (fault.times ?? 1) - 1;
    fault?.before?.();
    if (fault?.reply) return send(fault.reply, op);
    let reply: Reply;
    try {
      reply = this.route(match, url.searchParams, (body ?? {}) as Record<string, unknown>);
    } catch (err) {
      this.problems.push(`double failed on ${op.operationId}: ${err instanceof Error ? err.stack : String(err)}`);
      reply = { status: 500, body: { message: 'double error' } };
    }
    if (fault?.hang) {
      this.hung.push({ res, send: () => send(reply, op) });
      return;
    }
    send(reply, op);
  }

  private rateLimit(op: Operation): Reply | undefined {
    const t = Date.now();
    if (t < this.limitedUntil && this.limitKind) {
      // Requests already in flight when the limit was answered are not the client's fault.
      if (t > this.limitSignalledAt + 200) {
        this.problems.push(`request ${op.operationId} at ${t} was sent while a ${this.limitKind.kind} rate limit was in force (until ${this.limitedUntil})`);
      }
      return this.limitReply(this.limitKind);
    }
    const next = this.nextLimits[0];
    if (!next || (next.operationId && next.operationId !== op.operationId)) return undefined;
    this.nextLimits.shift();
    this.limitSignalledAt = t;
    if (next.kind === 'primary') {
      const reset = Math.ceil(t / 1000) + next.resetAfterSeconds;
      this.limitedUntil = reset * 1000;
      this.limitKind = { kind: 'primary', status: next.status, reset };
    } else {
      this.limitedUntil = t + next.resetAfterSeconds * 1000;
      this.limitKind = { kind: 'secondary', status: next.status, retryAfter: next.retryAfter };
    }
    this.limits.push({ at: t, until: this.limitedUntil, kind: next.kind, reset: this.limitKind.reset });
    return this.limitReply(this.limitKind);
  }

  private limitReply(l: NonNullable<GitHubDouble['limitKind']>): Reply {
    if (l.kind === 'primary') {
      return {
        status: l.status,
        crossCutting: true,
        headers: { 'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': '0', 'x-ratelimit-used': '5000', 'x-ratelimit-reset': String(l.reset), 'x-ratelimit-resource': 'core' },
        body: { message: 'API rate limit exceeded for installation ID 1.', documentation_url: `${OCTOCAT_DOCS}/overview/rate-limits-for-the-rest-api`, status: String(l.status) },
      };
    }
    return {
      status: l.status,
      crossCutting: true,
      headers: l.retryAfter !== undefined ? { 'retry-after': String(l.retryAfter) } : {},
      body: {
        message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
        documentation_url: `${OCTOCAT_DOCS}/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits`,
        status: String(l.status),
      },
    };
  }

  private authenticate(header: string | undefined, op: Operation): Reply | undefined {
    const [scheme, value] = (header ?? '').split(' ');
    if (op.operationId === 'apps/create-installation-access-token') {
      if (scheme?.toLowerCase() === 'bearer' && value && this.verifyAppJwt(value)) return undefined;
      this.problems.push('installation token requested without a valid app JWT');
      return { status: 401, crossCutting: true, body: { message: 'A JSON web token could not be decoded', documentation_url: OCTOCAT_DOCS } };
    }
    const ok = (scheme === 'token' || scheme === 'Bearer' || scheme === 'bearer') && value && (value === this.opts.token || this.issuedTokens.has(value));
    if (ok) return undefined;
    this.problems.push(`${op.operationId}: bad credentials (${scheme ?? 'none'})`);
    return { status: 401, crossCutting: true, body: { message: 'Bad credentials', documentation_url: OCTOCAT_DOCS, status: '401' } };
  }

  private verifyAppJwt(jwt: string): boolean {
    if (!this.appKey || !this.opts.app) return false;
    const [h, p, s] = jwt.split('.');
    if (!h || !p || !s) return false;
    const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { alg?: string };
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as { iss?: string | number; exp: number; iat: number };
    const signed = verify('RSA-SHA256', Buffer.from(`${h}.${p}`), this.appKey, Buffer.from(s, 'base64url'));
    const t = Date.now() / 1000;
    return signed && header.alg === 'RS256' && String(payload.iss) === this.opts.app.appId && payload.exp > t && payload.iat <= t + 60;
  }

  private route(m: Match, q: URLSearchParams, body: Record<string, unknown>): Reply {
    const { owner, repo } = m.pathParams;
    if (m.operation.operationId !== 'apps/create-installation-access-token' && (owner !== this.opts.owner || repo !== this.opts.repo)) {
      return { status: 404, body: { message: 'Not Found', documentation_url: OCTOCAT_DOCS, status: '404' } };
    }
    const op = m.operation;
    const build = (status: number, overlay: unknown): Reply => ({ status, body: this.api.buildResponse(op, status, overlay) });
    const notFound: Reply = { status: 404, body: { message: 'Not Found', documentation_url: OCTOCAT_DOCS, status: '404' } };
    const p = m.pathParams;
    switch (op.operationId) {
      case 'apps/create-installation-access-token': {
        if (Number(p.installation_id) !== this.opts.app?.installationId) return notFound;
        const token = `ghs_${randomUUID().replace(/-/g, '')}`;
        this.issuedTokens.add(token);
        return build(201, { token, expires_at: new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, 'Z'), repository_selection: 'selected' });
      }
      case 'git/get-ref': {
        const sha = this.refs.get(p.ref);
        return sha ? build(200, this.refOverlay(p.ref, sha)) : notFound;
      }
      case 'git/create-ref': {
        const ref = String(body.ref).replace(/^refs\//, '');
        if (this.refs.has(ref)) return validationFailed('Reference already exists');
        if (!this.commits.has(String(body.sha))) return validationFailed('Object does not exist');
        this.refs.set(ref, String(body.sha));
        return build(201, this.refOverlay(ref, String(body.sha)));
      }
      case 'git/get-commit': {
        const c = this.commits.get(p.commit_sha);
        if (!c) return notFound;
        return build(200, {
          sha: c.sha,
          url: this.apiUrl(`git/commits/${c.sha}`),
          html_url: this.htmlUrl(`commit/${c.sha}`),
          message: c.message,
          author: { name: c.author, email: `${c.author}@example.com`, date: c.date },
          committer: { name: c.author, email: `${c.author}@example.com`, date: c.date },
          tree: { sha: sha1(`tree ${c.sha}`), url: this.apiUrl(`git/trees/${c.sha}`) },
          parents: c.parents.map((s) => ({ sha: s, url: this.apiUrl(`git/commits/${s}`), html_url: this.htmlUrl(`commit/${s}`) })),
          verification: { verified: false, reason: 'unsigned', signature: null, payload: null, verified_at: null },
        });
      }
      case 'repos/compare-commits-with-basehead': {
        const [b, h] = String(p.basehead).split('...');
        const base = b === undefined ? undefined : this.resolve(b);
        const head = h === undefined ? undefined : this.resolve(h);
        if (!base || !head) return notFound;
        const fromBase = this.reachable(base);
        const fromHead = this.reachable(head);
        const ahead = [...fromHead].filter((x) => !fromBase.has(x));
        const behind = [...fromBase].filter((x) => !fromHead.has(x));
        const status = ahead.length === 0 ? (behind.length === 0 ? 'identical' : 'behind') : behind.length === 0 ? 'ahead' : 'diverged';
        const mergeBase = [...fromHead].find((x) => fromBase.has(x)) ?? base;
        return build(200, {
          url: this.apiUrl(`compare/${p.basehead}`),
          html_url: this.htmlUrl(`compare/${p.basehead}`),
          permalink_url: this.htmlUrl(`compare/${base}...${head}`),
          diff_url: this.htmlUrl(`compare/${p.basehead}.diff`),
          patch_url: this.htmlUrl(`compare/${p.basehead}.patch`),
          base_commit: { sha: base, url: this.apiUrl(`commits/${base}`) },
          merge_base_commit: { sha: mergeBase, url: this.apiUrl(`commits/${mergeBase}`) },
          status,
          ahead_by: ahead.length,
          behind_by: behind.length,
          total_commits: ahead.length,
          // Paged like GitHub (per_page); modelgate only reads the status.
          commits: [],
        });
      }
      case 'repos/list-commits': {
        // Newest first (reachable, by date), optionally only those that changed `path` against their first parent.
        const start = this.resolve(q.get('sha') ?? 'main');
        if (!start) return notFound;
        const path = q.get('path');
        const perPage = Math.min(100, Number(q.get('per_page') ?? 30));
        const list = [...this.reachable(start)]
          .map((sha) => this.commits.get(sha)!)
          .filter((c) => !path || c.tree.get(path) !== (c.parents[0] ? this.commits.get(c.parents[0])?.tree.get(path) : undefined))
          .sort((a, b) => (a.date < b.date ? 1 : a.date > b.date ? -1 : 0))
          .slice(0, perPage);
        return build(200, list.map((c) => ({
          sha: c.sha,
          url: this.apiUrl(`commits/${c.sha}`),
          html_url: this.htmlUrl(`commit/${c.sha}`),
          comments_url: this.apiUrl(`commits/${c.sha}/comments`),
          commit: {
            url: this.apiUrl(`git/commits/${c.sha}`),
            message: c.message,
            author: { name: c.author, email: `${c.author}@example.com`, date: c.date },
            committer: { name: c.author, email: `${c.author}@example.com`, date: c.date },
            tree: { sha: sha1(`tree ${c.sha}`), url: this.apiUrl(`git/trees/${c.sha}`) },
            comment_count: 0,
          },
          author: null,
          committer: null,
          parents: c.parents.map((x) => ({ sha: x, url: this.apiUrl(`commits/${x}`), html_url: this.htmlUrl(`commit/${x}`) })),
        })));
      }
      case 'repos/get-content': {
        const at = this.resolve(q.get('ref') ?? 'main');
        const content = at ? this.commits.get(at)!.tree.get(p.path) : undefined;
        if (content === undefined) return notFound;
        return build(200, this.contentOverlay(p.path, content, q.get('ref') ?? 'main'));
      }
      case 'repos/create-or-update-file-contents': {
        const branch = typeof body.branch === 'string' ? body.branch : 'main';
        const head = this.refs.get(`heads/${branch}`);
        if (!head) return notFound;
        const tree = new Map(this.commits.get(head)!.tree);
        const existing = tree.get(p.path);
        if (existing !== undefined && body.sha === undefined) return validationFailed('Invalid request.\n\n"sha" wasn\'t supplied.');
        if (existing !== undefined && body.sha !== blobSha(existing)) {
          return { status: 409, body: { message: `${p.path} does not match ${String(body.sha)}`, documentation_url: OCTOCAT_DOCS, status: '409' } };
        }
        const content = Buffer.from(String(body.content), 'base64').toString('utf8');
        tree.set(p.path, content);
        const sha = this.commit({ parents: [head], tree, message: String(body.message), author: this.actor() });
        this.refs.set(`heads/${branch}`, sha);
        return build(existing === undefined ? 201 : 200, {
          content: this.contentOverlay(p.path, content, branch),
          commit: { sha, message: String(body.message), html_url: this.htmlUrl(`commit/${sha}`), url: this.apiUrl(`git/commits/${sha}`) },
        });
      }
      case 'repos/delete-file': {
        const branch = typeof body.branch === 'string' ? body.branch : 'main';
        const head = this.refs.get(`heads/${branch}`);
        if (!head) return notFound;
        const tree = new Map(this.commits.get(head)!.tree);
        const existing = tree.get(p.path);
        if (existing === undefined) return notFound;
        if (body.sha !== blobSha(existing)) {
          return { status: 409, body: { message: `${p.path} does not match ${String(body.sha)}`, documentation_url: OCTOCAT_DOCS, status: '409' } };
        }
        tree.delete(p.path);
        const sha = this.commit({ parents: [head], tree, message: String(body.message), author: this.actor() });
        this.refs.set(`heads/${branch}`, sha);
        return build(200, {
          content: null,
          commit: { sha, message: String(body.message), html_url: this.htmlUrl(`commit/${sha}`), url: this.apiUrl(`git/commits/${sha}`) },
        });
      }
      case 'pulls/list': {
        const head = q.get('head');
        const state = q.get('state') ?? 'open';
        const base = q.get('base');
        const list = this.pulls
          .filter((pr) => !head || `${this.opts.owner}:${pr.head}` === head)
          .filter((pr) => !base || pr.base === base)
          .filter((pr) => state === 'all' || pr.state === state)
          .sort((a, b) => (q.get('direction') === 'asc' ? a.number - b.number : b.number - a.number))
          .slice(0, Number(q.get('per_page') ?? 30));
        return build(200, list.map((pr) => this.pullOverlay(pr, false)));
      }
      case 'pulls/create': {
        const head = String(body.head).replace(/^[^:]+:/, '');
        const base = String(body.base);
        if (!this.refs.has(`heads/${head}`) || !this.refs.has(`heads/${base}`)) {
          return validationFailed('Validation Failed', [{ resource: 'PullRequest', field: 'head', code: 'invalid' }]);
        }
        if (this.pulls.some((pr) => pr.head === head && pr.base === base && pr.state === 'open')) {
          return validationFailed('Validation Failed', [{ resource: 'PullRequest', code: 'custom', message: `A pull request already exists for ${this.opts.owner}:${head}.` }]);
        }
        if (this.refs.get(`heads/${head}`) === this.refs.get(`heads/${base}`)) {
          return validationFailed('Validation Failed', [{ resource: 'PullRequest', code: 'custom', message: `No commits between ${base} and ${head}` }]);
        }
        const pr: Pull = {
          id: this.nextId++,
          number: this.pulls.length + 1,
          title: String(body.title),
          body: typeof body.body === 'string' ? body.body : null,
          head,
          base,
          forkPoint: this.refs.get(`heads/${base}`)!,
          state: 'open',
          user: this.actor(),
          createdAt: now(),
          updatedAt: now(),
          mergeable: true,
          comments: [],
        };
        this.pulls.push(pr);
        return build(201, this.pullOverlay(pr, true));
      }
      case 'pulls/get': {
        const pr = this.pulls.find((x) => x.number === Number(p.pull_number));
        return pr ? build(200, this.pullOverlay(pr, true)) : notFound;
      }
      case 'pulls/update': {
        const pr = this.pulls.find((x) => x.number === Number(p.pull_number));
        if (!pr) return notFound;
        if (body.state === 'closed' && pr.state === 'open') {
          pr.frozenHead = this.headSha(pr);
          pr.state = 'closed';
          pr.closedBy = this.actor();
          pr.closedAt = now();
        }
        if (typeof body.title === 'string') pr.title = body.title;
        if (typeof body.body === 'string') pr.body = body.body;
        pr.updatedAt = now();
        return build(200, this.pullOverlay(pr, true));
      }
      case 'pulls/merge': {
        const pr = this.pulls.find((x) => x.number === Number(p.pull_number));
        if (!pr) return notFound;
        if (pr.state !== 'open' || !pr.mergeable) return { status: 405, body: { message: 'Pull Request is not mergeable', documentation_url: OCTOCAT_DOCS } };
        if (body.sha !== undefined && body.sha !== this.headSha(pr)) {
          return { status: 409, body: { message: 'Head branch was modified. Review and try the merge again.', documentation_url: OCTOCAT_DOCS } };
        }
        const title = typeof body.commit_title === 'string' ? body.commit_title : `Merge pull request #${pr.number}`;
        const message = typeof body.commit_message === 'string' ? `${title}\n\n${body.commit_message}` : title;
        const sha = this.mergePull(pr, (body.merge_method as 'merge' | 'squash' | 'rebase' | undefined) ?? 'merge', message, this.actor());
        if (!sha) return { status: 405, body: { message: 'Pull Request is not mergeable', documentation_url: OCTOCAT_DOCS } };
        return build(200, { sha, merged: true, message: 'Pull Request successfully merged' });
      }
      case 'repos/get-combined-status-for-ref': {
        const sha = this.resolve(p.ref);
        if (!sha) return notFound;
        const list = this.statuses.get(sha) ?? [];
        const state = list.some((s) => s.state === 'failure' || s.state === 'error') ? 'failure' : list.length === 0 || list.some((s) => s.state === 'pending') ? 'pending' : 'success';
        return build(200, {
          state,
          sha,
          total_count: list.length,
          statuses: list.map((s, i) => ({ id: i + 1, state: s.state, context: s.context, description: null, target_url: null, avatar_url: null, url: this.apiUrl(`statuses/${sha}`) })),
          commit_url: this.apiUrl(`commits/${sha}`),
          url: this.apiUrl(`commits/${sha}/status`),
          repository: this.minimalRepo(),
        });
      }
      case 'checks/list-for-ref': {
        const sha = this.resolve(p.ref) ?? p.ref;
        const runs = this.checkRuns.get(sha) ?? [];
        return build(200, {
          total_count: runs.length,
          check_runs: runs.map((r, i) => ({
            id: i + 1,
            head_sha: sha,
            name: r.name,
            status: r.status,
            conclusion: r.conclusion,
            started_at: now(),
            completed_at: r.status === 'completed' ? now() : null,
            app: null,
            pull_requests: [],
          })),
        });
      }
      case 'issues/get': {
        const pr = this.pulls.find((x) => x.number === Number(p.issue_number));
        if (!pr) return notFound;
        return build(200, {
          id: pr.id,
          number: pr.number,
          state: pr.state,
          title: pr.title,
          body: pr.body,
          user: this.user(pr.user),
          closed_by: pr.closedBy ? this.user(pr.closedBy) : null,
          closed_at: pr.closedAt ?? null,
          created_at: pr.createdAt,
          updated_at: pr.updatedAt,
          comments: pr.comments.length,
          html_url: this.htmlUrl(`pull/${pr.number}`),
          pull_request: { url: this.apiUrl(`pulls/${pr.number}`), html_url: this.htmlUrl(`pull/${pr.number}`), diff_url: null, patch_url: null, merged_at: pr.mergedAt ?? null },
          author_association: 'OWNER',
        });
      }
      case 'issues/list-comments': {
        const pr = this.pulls.find((x) => x.number === Number(p.issue_number));
        if (!pr) return notFound;
        return build(200, pr.comments.map((c) => this.commentOverlay(pr, c)));
      }
      case 'issues/create-comment': {
        const pr = this.pulls.find((x) => x.number === Number(p.issue_number));
        if (!pr) return notFound;
        const c = { id: this.nextId++, body: String(body.body), user: this.actor(), at: now() };
        pr.comments.push(c);
        return build(201, this.commentOverlay(pr, c));
      }
      default:
        this.problems.push(`documented but not implemented by the double: ${op.method} ${op.template} (${op.operationId})`);
        return { status: 404, body: { message: 'Not Found', documentation_url: OCTOCAT_DOCS } };
    }
  }

  // ---- model ----

  private commit(c: { parents: string[]; tree: Map<string, string>; message: string; author: string }): string {
    const date = now();
    const sha = sha1(JSON.stringify([c.parents, [...c.tree.entries()].sort(), c.message, c.author, date, randomUUID()]));
    this.commits.set(sha, { sha, date, ...c });
    return sha;
  }

  private mergePull(pr: Pull, method: 'merge' | 'squash' | 'rebase', message: string, by: string): string {
    const head = this.headSha(pr);
    const baseTip = this.refs.get(`heads/${pr.base}`)!;
    const fork = this.commits.get(pr.forkPoint)!.tree;
    const headTree = this.commits.get(head)!.tree;
    const tree = new Map(this.commits.get(baseTip)!.tree);
    for (const path of new Set([...fork.keys(), ...headTree.keys()])) {
      if (fork.get(path) === headTree.get(path)) continue;
      if (tree.get(path) !== fork.get(path) && tree.get(path) !== headTree.get(path)) return '';
      const v = headTree.get(path);
      if (v === undefined) tree.delete(path);
      else tree.set(path, v);
    }
    const sha = this.commit({ parents: method === 'merge' ? [baseTip, head] : [baseTip], tree, message, author: by });
    this.refs.set(`heads/${pr.base}`, sha);
    pr.frozenHead = head;
    pr.state = 'closed';
    pr.mergedAt = now();
    pr.closedAt = pr.mergedAt;
    pr.mergeSha = sha;
    pr.mergedBy = by;
    pr.closedBy = by;
    return sha;
  }

  /** Every commit reachable from `sha` (breadth first, so the first common one is a nearest merge base). */
  private reachable(sha: string): Set<string> {
    const seen = new Set<string>();
    const queue = [sha];
    while (queue.length) {
      const c = queue.shift()!;
      if (seen.has(c)) continue;
      seen.add(c);
      queue.push(...(this.commits.get(c)?.parents ?? []));
    }
    return seen;
  }

  private headSha(pr: Pull): string {
    return pr.frozenHead ?? this.refs.get(`heads/${pr.head}`) ?? pr.forkPoint;
  }

  private resolve(ref: string): string | undefined {
    if (this.commits.has(ref)) return ref;
    return this.refs.get(`heads/${ref}`);
  }

  private actor(): string {
    return this.opts.actor ?? 'modelgate-bot';
  }

  // ---- response overlays (the schema fills the rest) ----

  private user(login: string): unknown {
    return this.api.buildSchema('simple-user', {
      login,
      id: Number.parseInt(sha1(login).slice(0, 6), 16),
      node_id: `U_${login}`,
      type: 'User',
      site_admin: false,
      html_url: `https://github.example/${login}`,
      url: `https://github.example/api/v3/users/${login}`,
    });
  }

  private repoObject(): unknown {
    return this.api.buildSchema('repository', {
      id: 1,
      name: this.opts.repo,
      full_name: `${this.opts.owner}/${this.opts.repo}`,
      owner: this.user(this.opts.owner),
      private: true,
      default_branch: 'main',
      html_url: this.htmlUrl(''),
      url: this.apiUrl(''),
    });
  }

  private minimalRepo(): unknown {
    return this.api.buildSchema('minimal-repository', {
      id: 1,
      name: this.opts.repo,
      full_name: `${this.opts.owner}/${this.opts.repo}`,
      owner: this.user(this.opts.owner),
      private: true,
      html_url: this.htmlUrl(''),
      url: this.apiUrl(''),
    });
  }

  private pullOverlay(pr: Pull, full: boolean): Record<string, unknown> {
    const head = this.headSha(pr);
    const branchSide = (ref: string, sha: string) => ({ label: `${this.opts.owner}:${ref}`, ref, sha, user: this.user(this.opts.owner), repo: this.repoObject() });
    const base = {
      id: pr.id,
      node_id: `PR_${pr.id}`,
      number: pr.number,
      url: this.apiUrl(`pulls/${pr.number}`),
      html_url: this.htmlUrl(`pull/${pr.number}`),
      state: pr.state,
      locked: false,
      title: pr.title,
      body: pr.body,
      user: this.user(pr.user),
      labels: [],
      draft: false,
      created_at: pr.createdAt,
      updated_at: pr.updatedAt,
      closed_at: pr.closedAt ?? null,
      merged_at: pr.mergedAt ?? null,
      merge_commit_sha: pr.mergeSha ?? null,
      head: branchSide(pr.head, head),
      base: branchSide(pr.base, this.refs.get(`heads/${pr.base}`)!),
      author_association: 'OWNER',
      auto_merge: null,
    };
    if (!full) return base;
    return {
      ...base,
      merged: !!pr.mergedAt,
      mergeable: pr.state === 'open' ? pr.mergeable : null,
      mergeable_state: pr.mergeable ? 'clean' : 'dirty',
      merged_by: pr.mergedBy ? this.user(pr.mergedBy) : null,
      comments: pr.comments.length,
      review_comments: 0,
      commits: 1,
      additions: 1,
      deletions: 1,
      changed_files: 1,
      maintainer_can_modify: false,
    };
  }

  private refOverlay(ref: string, sha: string): unknown {
    return { ref: `refs/${ref}`, node_id: `REF_${sha1(ref).slice(0, 8)}`, url: this.apiUrl(`git/refs/${ref}`), object: { type: 'commit', sha, url: this.apiUrl(`git/commits/${sha}`) } };
  }

  private contentOverlay(path: string, content: string, ref: string): unknown {
    const sha = blobSha(content);
    const b64 = Buffer.from(content, 'utf8').toString('base64').replace(/(.{60})/g, '$1\n');
    return {
      type: 'file',
      encoding: 'base64',
      size: Buffer.byteLength(content),
      name: path.split('/').pop(),
      path,
      content: b64,
      sha,
      url: this.apiUrl(`contents/${path}?ref=${ref}`),
      git_url: this.apiUrl(`git/blobs/${sha}`),
      html_url: this.htmlUrl(`blob/${ref}/${path}`),
      download_url: `https://raw.github.example/${this.opts.owner}/${this.opts.repo}/${ref}/${path}`,
      _links: { self: this.apiUrl(`contents/${path}`), git: this.apiUrl(`git/blobs/${sha}`), html: this.htmlUrl(`blob/${ref}/${path}`) },
    };
  }

  private commentOverlay(pr: Pull, c: { id: number; body: string; user: string; at: string }): unknown {
    return {
      id: c.id,
      node_id: `IC_${c.id}`,
      url: this.apiUrl(`issues/comments/${c.id}`),
      html_url: this.htmlUrl(`pull/${pr.number}#issuecomment-${c.id}`),
      issue_url: this.apiUrl(`issues/${pr.number}`),
      body: c.body,
      user: this.user(c.user),
      created_at: c.at,
      updated_at: c.at,
      author_association: 'OWNER',
    };
  }

  private apiUrl(rest: string): string {
    return `${this.baseUrl}/repos/${this.opts.owner}/${this.opts.repo}${rest ? `/${rest}` : ''}`;
  }

  private htmlUrl(rest: string): string {
    return `https://github.example/${this.opts.owner}/${this.opts.repo}${rest ? `/${rest}` : ''}`;
  }
}

function validationFailed(message: string, errors?: Array<Record<string, string>>): Reply {
  return { status: 422, body: { message, documentation_url: OCTOCAT_DOCS, status: '422', ...(errors ? { errors } : {}) } };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sha1(s: string): string {
  return createHash('sha1').update(s).digest('hex');
}

/** Git's blob id: what the contents API returns as `sha`. */
export function blobSha(content: string): string {
  const buf = Buffer.from(content, 'utf8');
  return createHash('sha1').update(Buffer.concat([Buffer.from(`blob ${buf.length}\0`), buf])).digest('hex');
}

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}
