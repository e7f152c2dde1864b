/**
 * Commit-building with git plumbing in a bare repository: no working tree and no checkout, so concurrent
 * activities never trip over each other's files, and a commit exists only once it is pushed.
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gitOk, type GitRunner } from './git-cli.js';

export interface BlobAt {
  content: string;
  mode: string;
  sha: string;
}

export class GitPlumbing {
  constructor(
    readonly gitDir: string,
    readonly run: GitRunner,
  ) {}

  ok(args: string[], input?: string, env?: Record<string, string>): Promise<string> {
    return gitOk(this.run, { gitDir: this.gitDir, args, input, env });
  }

  /** The commit a ref or SHA names, or undefined. */
  async resolve(ref: string): Promise<string | undefined> {
    const r = await this.run({ gitDir: this.gitDir, args: ['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`] });
    return r.code === 0 ? r.stdout.trim() : undefined;
  }

  async readBlob(commit: string, path: string): Promise<BlobAt | undefined> {
    const ls = await this.ok(['ls-tree', '-z', commit, '--', path]);
    const entry = ls.split('\0').find((e) => e.endsWith(`\t${path}`));
    if (!entry) return undefined;
    const [meta] = entry.split('\t');
    const [mode, type, sha] = meta.split(' ');
    if (type !== 'blob' || !sha || !mode) return undefined;
    return { content: await this.ok(['cat-file', 'blob', sha]), mode, sha };
  }

  async isAncestor(maybeAncestor: string, of: string): Promise<boolean> {
    const r = await this.run({ gitDir: this.gitDir, args: ['merge-base', '--is-ancestor', maybeAncestor, of] });
    if (r.code === 0) return true;
    if (r.code === 1) return false;
    throw new Error(`git merge-base failed: ${r.stderr.trim()}`);
  }

  /** A commit whose tree is `base`'s tree with `files` replaced (content null: removed). */
  async commitFiles(opts: {
    base?: string;
    files: Array<{ path: string; content: string | null; mode?: string }>;
    parents: string[];
    message: string;
  }): Promise<string> {
    const index = join(this.gitDir, `modelgate-index-${randomUUID()}`);
    const env = { GIT_INDEX_FILE: index };
    try {
      if (opts.base) await this.ok(['read-tree', opts.base], undefined, env);
      for (const f of opts.files) {
        if (f.content === null) {
          // Mode 0 removes the path (`--force-remove` would need a work tree).
          await this.ok(['update-index', '--index-info'], `0 ${'0'.repeat(40)}\t${f.path}\n`, env);
          continue;
        }
        const blob = (await this.ok(['hash-object', '-w', '--stdin'], f.content)).trim();
        await this.ok(['update-index', '--add', '--cacheinfo', `${f.mode ?? '100644'},${blob},${f.path}`], undefined, env);
      }
      const tree = (await this.ok(['write-tree'], undefined, env)).trim();
      return await this.commitTree(tree, opts.parents, opts.message);
    } finally {
      await rm(index, { force: true });
    }
  }

  async commitTree(tree: string, parents: string[], message: string): Promise<string> {
    const args = ['commit-tree', '--no-gpg-sign', tree, ...parents.flatMap((p) => ['-p', p]), '-F', '-'];
    return (await this.ok(args, message)).trim();
  }
}

/** One trailer line; newlines in values would end the trailer block. */
export function trailer(key: string, value: string): string {
  return `${key}: ${value.replace(/[\r\n]+/g, ' ').trim()}`;
}
