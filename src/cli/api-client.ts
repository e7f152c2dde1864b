/**
 * The CLI's decisions go through the modelgate API, so who decides comes from the caller's token (checked and
 * signed there), never from a command-line flag. Errors come back as the API's one-line `{ code, message }`.
 */
import { readFileSync } from 'node:fs';
import { request } from 'undici';
import type { LifecycleState } from '../workflows/definitions.js';
import { CliError } from './context.js';

export interface ApiCredentials {
  apiUrl: string;
  token?: string;
  tokenFile?: string;
}

export interface ApiClient {
  post<T>(path: string, body: unknown): Promise<{ status: number; body: T }>;
  get<T>(path: string): Promise<T>;
  /** A route that takes no credential (the gateways' active-version endpoint): no token is read or sent. */
  getPublic<T>(path: string): Promise<T>;
}

/** The API refused: its one-line message, with the status and stable code for commands that explain further. */
export class ApiError extends CliError {
  override name = 'ApiError';
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

export interface DecisionAnswer {
  already: boolean;
  message: string;
  state: LifecycleState;
}

function readToken(c: ApiCredentials, tokenFileFlag?: string): string {
  const file = tokenFileFlag ?? (c.token ? undefined : c.tokenFile);
  if (file) {
    try {
      const t = readFileSync(file, 'utf8').trim();
      if (!t) throw new CliError(`--token-file ${file} is empty`);
      return t;
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw new CliError(`cannot read the token file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  if (c.token) return c.token;
  throw new CliError('this command needs your modelgate API token: set MODELGATE_TOKEN or MODELGATE_TOKEN_FILE, or pass --token-file (`npm start` prints the demo ones)');
}

export function apiClient(c: ApiCredentials, tokenFileFlag?: string): ApiClient {
  const call = async <T>(method: 'GET' | 'POST', path: string, body?: unknown, auth = true): Promise<{ status: number; body: T }> => {
    // Read before connecting: a missing token is the caller's mistake, not an unreachable API.
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (auth) headers.authorization = `Bearer ${readToken(c, tokenFileFlag)}`;
    let res;
    try {
      res = await request(`${c.apiUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), headersTimeout: 120_000, bodyTimeout: 120_000 });
    } catch (err) {
      throw new CliError(`cannot reach the modelgate API at ${c.apiUrl}: ${(err as Error).message} (set MODELGATE_API_URL)`);
    }
    const text = await res.body.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      throw new CliError(`the modelgate API at ${c.apiUrl} answered ${res.statusCode} with a body that is not JSON`);
    }
    if (res.statusCode >= 400) {
      const e = parsed as { code?: string; message?: string };
      throw new ApiError(e.message ? e.message : `the modelgate API answered ${res.statusCode}${e.code ? ` (${e.code})` : ''}`, res.statusCode, e.code);
    }
    return { status: res.statusCode, body: parsed as T };
  };
  return {
    post: (path, body) => call('POST', path, body),
    get: async (path) => (await call('GET', path)).body as never,
    getPublic: async (path) => (await call('GET', path, undefined, false)).body as never,
  };
}

export function versionPath(model: string, version: number): string {
  return `${modelPath(model)}/versions/${version}`;
}

export function modelPath(model: string): string {
  return `/v1/models/${encodeURIComponent(model)}`;
}
