/**
 * Settings of the HTTP front door (API tokens, Slack, webhook secrets, reconciliation). Parsed with parseEnv so
 * a bad key stops the process with its name; secret values never appear in messages.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError, parseEnv } from '../config.js';
import { DirectoryError, addEnvTokens } from '../identity/load.js';
import { loadIdentityConfig, type IdentityConfig } from './identity.js';
import { loadUiConfig, type UiConfig } from './ui.js';
import { loadUiOidcConfig, type UiOidcSettings } from './ui-oidc.js';

const positiveInt = z.coerce.number().int().positive();

const shape = {
  /** `token=identity[:scope+scope],…`; tokens are opaque strings without `=` or `,`; identities from the directory. */
  MODELGATE_API_TOKENS: z.string().min(1).optional(),
  /** A file with one `token=identity` per line (# comments allowed); merged with MODELGATE_API_TOKENS. */
  MODELGATE_API_TOKENS_FILE: z.string().min(1).optional(),
  MODELGATE_SLACK_SIGNING_SECRET: z.string().min(1).optional(),
  MODELGATE_SLACK_BOT_TOKEN: z.string().min(1).optional(),
  /** Web API base, e.g. https://slack.com/api/ (tests point it at a local double). */
  MODELGATE_SLACK_API_URL: z.string().url().default('https://slack.com/api/'),
  /** Refused: Slack users are linked in the identity directory. */
  MODELGATE_SLACK_USERS: z.string().min(1).optional(),
  /** Only response_urls under these comma-separated prefixes are called back (they come from signed payloads). */
  MODELGATE_SLACK_RESPONSE_URL_PREFIXES: z.string().min(1).default('https://hooks.slack.com/'),
  MODELGATE_MLFLOW_WEBHOOK_SECRET: z.string().min(1).optional(),
  MODELGATE_GITHUB_WEBHOOK_SECRET: z.string().min(1).optional(),
  /** 0 disables the reconciliation loop. */
  MODELGATE_RECONCILE_INTERVAL_MS: z.coerce.number().int().min(0).default(60_000),
  /** Versions created longer ago than this are left alone by the loop. */
  MODELGATE_RECONCILE_LOOKBACK_MS: positiveInt.default(24 * 3600_000),
  /** At most this many versions are looked at per model and run. */
  MODELGATE_RECONCILE_MAX_VERSIONS: positiveInt.default(50),
};

export interface ApiConfig {
  /** Who is who: identities, their tokens (hashed), Slack ids, GitHub logins; every caller maps through it. */
  identity: IdentityConfig;
  slack: {
    signingSecret?: string;
    botToken?: string;
    apiUrl: string;
    responseUrlPrefixes: string[];
  };
  mlflowWebhookSecret?: string;
  githubWebhookSecret?: string;
  reconcile: { intervalMs: number; lookbackMs: number; maxVersions: number };
  /** The web page's session cookie settings (loadApiConfig always sets them; optional for hand-built configs). */
  ui?: UiConfig;
  /** The web page's OIDC sign-in; undefined = off (no MODELGATE_UI_OIDC_CLIENT_ID). */
  uiOidc?: UiOidcSettings;
}

/** Parse `a=b,c=d` (or one pair per line). `what` names the key in errors; values of secrets are never echoed. */
export function parsePairs(text: string, what: string, secretKeys = false): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const parts = text.split(/[,\n]/).map((p) => p.trim()).filter((p) => p && !p.startsWith('#'));
  parts.forEach((part, i) => {
    const eq = part.indexOf('=');
    const key = eq > 0 ? part.slice(0, eq).trim() : '';
    const value = eq > 0 ? part.slice(eq + 1).trim() : '';
    if (!key || !value) {
      throw new ConfigError(`${what}: entry ${i + 1} is not key=value${secretKeys ? '' : ` (got ${JSON.stringify(part)})`}`);
    }
    out.push([key, value]);
  });
  return out;
}

export function loadApiConfig(env: NodeJS.ProcessEnv = process.env): ApiConfig {
  const c = parseEnv(shape, env);
  const identity = loadIdentityConfig(env);
  const ui = loadUiConfig(env);
  const uiOidc = loadUiOidcConfig(env, identity.oidc);
  const directory = identity.directory;
  const tokens = (key: string, text: string) => {
    try {
      addEnvTokens(directory, parsePairs(text, key, true), key);
    } catch (err) {
      if (err instanceof DirectoryError) throw new ConfigError(err.message);
      throw err;
    }
  };
  if (c.MODELGATE_API_TOKENS) tokens('MODELGATE_API_TOKENS', c.MODELGATE_API_TOKENS);
  if (c.MODELGATE_API_TOKENS_FILE) {
    let text: string;
    try {
      text = readFileSync(c.MODELGATE_API_TOKENS_FILE, 'utf8');
    } catch (err) {
      throw new ConfigError(`MODELGATE_API_TOKENS_FILE: cannot read ${c.MODELGATE_API_TOKENS_FILE}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    tokens('MODELGATE_API_TOKENS_FILE', text);
  }
  if (c.MODELGATE_SLACK_USERS) {
    throw new ConfigError('MODELGATE_SLACK_USERS: Slack users are linked in the identity directory now (`slack: U…` under each identity, see docs/security.md)');
  }
  return {
    identity,
    slack: {
      signingSecret: c.MODELGATE_SLACK_SIGNING_SECRET,
      botToken: c.MODELGATE_SLACK_BOT_TOKEN,
      apiUrl: c.MODELGATE_SLACK_API_URL.endsWith('/') ? c.MODELGATE_SLACK_API_URL : `${c.MODELGATE_SLACK_API_URL}/`,
      responseUrlPrefixes: c.MODELGATE_SLACK_RESPONSE_URL_PREFIXES.split(',').map((p) => p.trim()).filter(Boolean),
    },
    mlflowWebhookSecret: c.MODELGATE_MLFLOW_WEBHOOK_SECRET,
    githubWebhookSecret: c.MODELGATE_GITHUB_WEBHOOK_SECRET,
    reconcile: {
      intervalMs: c.MODELGATE_RECONCILE_INTERVAL_MS,
      lookbackMs: c.MODELGATE_RECONCILE_LOOKBACK_MS,
      maxVersions: c.MODELGATE_RECONCILE_MAX_VERSIONS,
    },
    ui,
    ...(uiOidc ? { uiOidc } : {}),
  };
}
