/**
 * The identity directory: every modelgate identity with its linked accounts (API token hashes, OIDC subject or
 * email, Slack user id, GitHub login, MLflow user) and groups. Every front door maps its caller through it; an
 * account that maps to nobody is refused. Policies name identities or `group:<name>`.
 */
import { createHash } from 'node:crypto';
import type { Caller, IdentityRef, Scope } from './types.js';
import { SCOPES } from './types.js';

export interface IdentityEntry {
  name: string;
  kind: 'person' | 'service';
  groups: string[];
  /** The most any credential of this identity may carry. */
  scopes: Scope[];
  mayActOnBehalf: boolean;
  emails: string[];
  oidcSubjects: string[];
  slack: string[];
  github: string[];
  mlflow: string[];
}

export interface TokenEntry {
  /** sha256 of the token, hex. The token itself lives in a secret, never in a file modelgate reads twice. */
  sha256: string;
  identity: string;
  scopes: Scope[];
}

export const PERSON_SCOPES: Scope[] = ['read', 'promote', 'approve', 'retire'];
export const SERVICE_SCOPES: Scope[] = ['read', 'promote'];

export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export class IdentityDirectory {
  private readonly byName = new Map<string, IdentityEntry>();
  private readonly index = new Map<string, string>();
  private readonly tokens = new Map<string, TokenEntry>();

  constructor(
    entries: IdentityEntry[],
    tokens: TokenEntry[] = [],
    /** Where the directory came from, for messages. */
    readonly source = 'the identity directory',
  ) {
    for (const e of entries) {
      if (this.byName.has(e.name)) throw new Error(`${source}: identity ${e.name} is listed twice`);
      this.byName.set(e.name, e);
      const link = (kind: string, values: string[]) => {
        for (const v of values) {
          const key = `${kind}:${kind === 'github' || kind === 'email' ? v.toLowerCase() : v}`;
          const other = this.index.get(key);
          if (other && other !== e.name) throw new Error(`${source}: ${kind} ${v} is linked to both ${other} and ${e.name}`);
          this.index.set(key, e.name);
        }
      };
      link('email', e.emails);
      link('sub', e.oidcSubjects);
      link('slack', e.slack);
      link('github', e.github);
      link('mlflow', e.mlflow);
    }
    for (const t of tokens) this.addToken(t);
  }

  addToken(t: TokenEntry): void {
    const who = this.byName.get(t.identity);
    if (!who) throw new Error(`${this.source}: a token names identity "${t.identity}", which is not in the directory`);
    const extra = t.scopes.filter((s) => !who.scopes.includes(s));
    if (extra.length) throw new Error(`${this.source}: a token of ${t.identity} asks for scope ${extra.join(', ')} beyond the identity's (${who.scopes.join(', ')})`);
    if (this.tokens.has(t.sha256)) throw new Error(`${this.source}: the same token is listed twice`);
    this.tokens.set(t.sha256, t);
  }

  get(name: string): IdentityEntry | undefined {
    return this.byName.get(name);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  ref(name: string): IdentityRef | undefined {
    const e = this.byName.get(name);
    return e ? { identity: e.name, groups: [...e.groups] } : undefined;
  }

  private caller(name: string | undefined, scopes: Scope[] | undefined, credential: Caller['credential']): Caller | undefined {
    const e = name ? this.byName.get(name) : undefined;
    if (!e) return undefined;
    const granted = scopes ? e.scopes.filter((s) => scopes.includes(s)) : [...e.scopes];
    return { identity: e.name, groups: [...e.groups], kind: e.kind, scopes: granted, mayActOnBehalf: e.mayActOnBehalf, credential };
  }

  /** The caller of a static API token (looked up by its hash). */
  byTokenHash(sha256: string): Caller | undefined {
    const t = this.tokens.get(sha256);
    return t ? this.caller(t.identity, t.scopes, 'token') : undefined;
  }

  /** An OIDC token's subject or (verified) email; `scopes` are what the token itself grants. */
  byOidc(subject: string, email: string | undefined, scopes: Scope[]): Caller | undefined {
    const name = this.index.get(`sub:${subject}`) ?? (email ? this.index.get(`email:${email.toLowerCase()}`) : undefined);
    return this.caller(name, scopes, 'oidc');
  }

  /** A Slack user id; Slack decisions carry the identity's `approve` scope only. */
  bySlackUser(userId: string): Caller | undefined {
    return this.caller(this.index.get(`slack:${userId}`), ['approve', 'read'], 'slack');
  }

  byGithubLogin(login: string): IdentityRef | undefined {
    const name = this.index.get(`github:${login.toLowerCase()}`);
    return name ? this.ref(name) : undefined;
  }

  /** MLflow's server-side user (a version's `user_id` when MLflow auth is on). */
  byMlflowUser(user: string): IdentityRef | undefined {
    const name = this.index.get(`mlflow:${user}`);
    return name ? this.ref(name) : undefined;
  }
}

export function isScope(s: string): s is Scope {
  return (SCOPES as readonly string[]).includes(s);
}
