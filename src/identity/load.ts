/**
 * Reads the identity directory (policies/identities.yaml by default) and the API tokens of the environment.
 * Errors name the file, line and column: `<file>:<line>:<col>: <path>: <reason>`, like the policy file's.
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { IdentityDirectory, PERSON_SCOPES, SERVICE_SCOPES, tokenHash, type IdentityEntry, type TokenEntry } from './directory.js';
import { SCOPES, type Scope } from './types.js';

export class DirectoryError extends Error {
  override name = 'DirectoryError';
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;
const oneOrMany = z.union([z.string().trim().min(1), z.array(z.string().trim().min(1))]).transform((v) => (Array.isArray(v) ? v : [v]));
const scope = z.enum(SCOPES as [Scope, ...Scope[]]);

const identitySchema = z
  .object({
    kind: z.enum(['person', 'service']).default('person'),
    groups: z.array(z.string().regex(NAME, 'must be a group name (letters, digits, . _ @ -)')).default([]),
    scopes: z.array(scope).optional(),
    actOnBehalf: z.boolean().default(false),
    email: oneOrMany.optional(),
    oidcSubject: oneOrMany.optional(),
    slack: oneOrMany
      .refine((ids) => ids.every((id) => /^[UW][A-Z0-9]+$/.test(id)), 'must be a Slack user id (U…/W…)')
      .optional(),
    github: oneOrMany.optional(),
    mlflow: oneOrMany.optional(),
  })
  .strict('unknown key (allowed: kind, groups, scopes, actOnBehalf, email, oidcSubject, slack, github, mlflow)')
  .nullable();

const fileSchema = z
  .object({
    identities: z.record(z.string().regex(NAME, 'must be an identity name (letters, digits, . _ @ -)'), identitySchema),
    tokens: z
      .array(
        z
          .object({
            sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be the hex sha256 of the token'),
            identity: z.string(),
            scopes: z.array(scope).optional(),
          })
          .strict('unknown key (allowed: sha256, identity, scopes)'),
      )
      .default([]),
  })
  .strict('unknown key (allowed: identities, tokens)');

function toEntry(name: string, raw: z.output<typeof identitySchema>): IdentityEntry {
  const r = raw ?? identitySchema.unwrap().parse({});
  if (r.actOnBehalf && r.kind !== 'service') throw new Error('actOnBehalf is for service identities (kind: service)');
  return {
    name,
    kind: r.kind,
    groups: r.groups,
    scopes: r.scopes ?? (r.kind === 'service' ? SERVICE_SCOPES : PERSON_SCOPES),
    mayActOnBehalf: r.actOnBehalf,
    emails: r.email ?? [],
    oidcSubjects: r.oidcSubject ?? [],
    slack: r.slack ?? [],
    github: r.github ?? [],
    mlflow: r.mlflow ?? [],
  };
}

export function parseDirectory(text: string, file: string): IdentityDirectory {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const at = (path: Array<string | number>) => {
    for (let p = path; ; p = p.slice(0, -1)) {
      const node = doc.getIn(p, true) as { range?: [number, number] } | undefined;
      if (node?.range) {
        const { line, col } = lines.linePos(node.range[0]);
        return `${file}:${line}:${col}`;
      }
      if (!p.length) return `${file}:1:1`;
    }
  };
  if (doc.errors[0]) {
    const { line, col } = lines.linePos(doc.errors[0].pos[0]);
    throw new DirectoryError(`${file}:${line}:${col}: yaml: ${doc.errors[0].message.split('\n')[0]}`);
  }
  const parsed = fileSchema.safeParse(doc.toJS());
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new DirectoryError(`${at(i.path)}: ${i.path.join('.') || '(top level)'}: ${i.message}`);
  }
  const entries: IdentityEntry[] = [];
  for (const [name, raw] of Object.entries(parsed.data.identities)) {
    try {
      entries.push(toEntry(name, raw));
    } catch (err) {
      throw new DirectoryError(`${at(['identities', name])}: identities.${name}: ${(err as Error).message}`);
    }
  }
  const tokens: TokenEntry[] = parsed.data.tokens.map((t) => ({ sha256: t.sha256, identity: t.identity, scopes: t.scopes ?? [] }));
  try {
    const dir = new IdentityDirectory(entries, [], file);
    tokens.forEach((t, k) => {
      try {
        const who = dir.get(t.identity);
        dir.addToken({ ...t, scopes: t.scopes.length ? t.scopes : (who?.scopes ?? []) });
      } catch (err) {
        throw new DirectoryError(`${at(['tokens', k])}: tokens[${k}]: ${(err as Error).message.replace(`${file}: `, '')}`);
      }
    });
    return dir;
  } catch (err) {
    if (err instanceof DirectoryError) throw err;
    throw new DirectoryError((err as Error).message);
  }
}

export function loadDirectoryFile(path: string): IdentityDirectory {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DirectoryError(`${path}: cannot read the identity directory: ${code === 'ENOENT' ? 'no such file' : (code ?? 'error')}`);
  }
  return parseDirectory(text, path);
}

/**
 * API tokens from the environment: `token=identity` (the identity's scopes) or `token=identity:promote+read`
 * (narrower). Values are secrets: messages name the entry's position, never the token.
 */
export function addEnvTokens(dir: IdentityDirectory, pairs: Array<[string, string]>, key: string): void {
  pairs.forEach(([token, spec], i) => {
    if (token.length < 16) throw new DirectoryError(`${key}: entry ${i + 1}: every token must have at least 16 characters`);
    const [identity, scopeText] = spec.split(':', 2) as [string, string | undefined];
    const who = dir.get(identity);
    if (!who) throw new DirectoryError(`${key}: entry ${i + 1} names identity "${identity}", which is not in ${dir.source}`);
    const scopes = scopeText ? scopeText.split('+').map((s) => s.trim()) : who.scopes;
    const bad = scopes.find((s) => !(SCOPES as readonly string[]).includes(s));
    if (bad) throw new DirectoryError(`${key}: entry ${i + 1}: unknown scope "${bad}" (allowed: ${SCOPES.join(', ')})`);
    try {
      dir.addToken({ sha256: tokenHash(token), identity, scopes: scopes as Scope[] });
    } catch (err) {
      throw new DirectoryError(`${key}: entry ${i + 1}: ${(err as Error).message.replace(`${dir.source}: `, '')}`);
    }
  });
}
