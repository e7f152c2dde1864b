/**
 * GitOps settings from the environment, and the provider factory activities use: one provider per
 * (kind, repo), created on first use and cached, so the plain git cache and GitHub's rate-limit state are
 * shared by every promotion touching that repository.
 */
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError, parseEnv } from '../config.js';
import { permanent, GitopsFailureTypes } from '../gitops/errors.js';
import type { GitRunner } from '../gitops/git-cli.js';
import { createGitHubClient, type GitHubAuth, type ThrottleOverrides } from '../gitops/github-client.js';
import { GitHubProvider } from '../gitops/github-provider.js';
import { GitProvider } from '../gitops/git-provider.js';
import type { GitopsProvider } from '../gitops/provider.js';
import type { GitopsPolicy } from '../policy/types.js';

const shape = {
  GITHUB_TOKEN: z.string().min(1).optional(),
  GITHUB_APP_ID: z.string().regex(/^\d+$/, 'expected the numeric App ID').optional(),
  /** PEM; `\n` escapes are accepted so the key fits in one env line. */
  GITHUB_APP_PRIVATE_KEY: z.string().min(1).optional(),
  GITHUB_APP_INSTALLATION_ID: z.coerce.number().int().positive().optional(),
  GITHUB_API_URL: z.string().url().default('https://api.github.com'),
  MODELGATE_DATA_DIR: z.string().min(1).default('.data'),
  /** Where the plain git provider keeps its bare caches (default <MODELGATE_DATA_DIR>/gitops). */
  MODELGATE_GIT_WORKDIR: z.string().min(1).optional(),
  MODELGATE_GIT_AUTHOR_NAME: z.string().min(1).default('modelgate'),
  MODELGATE_GIT_AUTHOR_EMAIL: z.string().regex(/^[^\s@<>]+@[^\s@<>]+$/, 'expected name@host').default('modelgate@localhost'),
  /** Worker secret behind the HMAC marker of modelgate's own branches, PRs and merges (same on every worker). */
  MODELGATE_GITOPS_MARKER_SECRET: z.string().min(16, 'must have at least 16 characters').optional(),
};

export interface GitopsConfig {
  github: {
    apiUrl: string;
    /** Undefined: no GitHub credentials; policies with provider `github` fail with GitopsNotConfigured. */
    auth?: GitHubAuth;
  };
  git: {
    workdir: string;
    author: { name: string; email: string };
  };
  /** Undefined: GitOps promotions fail with GitopsNotConfigured (a marker must never be unsigned or guessable). */
  markerSecret?: string;
}

export function loadGitopsConfig(env: NodeJS.ProcessEnv = process.env): GitopsConfig {
  const c = parseEnv(shape, env);
  const app = [c.GITHUB_APP_ID, c.GITHUB_APP_PRIVATE_KEY, c.GITHUB_APP_INSTALLATION_ID];
  if (c.GITHUB_TOKEN && app.some((v) => v !== undefined)) {
    throw new ConfigError('GITHUB_TOKEN: set either GITHUB_TOKEN or the GITHUB_APP_* keys, not both');
  }
  let auth: GitHubAuth | undefined;
  if (c.GITHUB_TOKEN) auth = { kind: 'token', token: c.GITHUB_TOKEN };
  else if (app.some((v) => v !== undefined)) {
    if (!c.GITHUB_APP_ID) throw new ConfigError('GITHUB_APP_ID: required with the other GITHUB_APP_* keys');
    if (!c.GITHUB_APP_PRIVATE_KEY) throw new ConfigError('GITHUB_APP_PRIVATE_KEY: required with the other GITHUB_APP_* keys');
    if (!c.GITHUB_APP_INSTALLATION_ID) throw new ConfigError('GITHUB_APP_INSTALLATION_ID: required with the other GITHUB_APP_* keys');
    const privateKey = c.GITHUB_APP_PRIVATE_KEY.replace(/\\n/g, '\n');
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(privateKey)) {
      throw new ConfigError('GITHUB_APP_PRIVATE_KEY: expected a PEM private key (-----BEGIN RSA PRIVATE KEY-----…)');
    }
    auth = { kind: 'app', appId: c.GITHUB_APP_ID, privateKey, installationId: c.GITHUB_APP_INSTALLATION_ID };
  }
  const workdir = c.MODELGATE_GIT_WORKDIR ?? join(c.MODELGATE_DATA_DIR, 'gitops');
  return {
    github: { apiUrl: c.GITHUB_API_URL.replace(/\/+$/, ''), auth },
    git: {
      workdir: isAbsolute(workdir) ? workdir : resolve(workdir),
      author: { name: c.MODELGATE_GIT_AUTHOR_NAME, email: c.MODELGATE_GIT_AUTHOR_EMAIL },
    },
    ...(c.MODELGATE_GITOPS_MARKER_SECRET ? { markerSecret: c.MODELGATE_GITOPS_MARKER_SECRET } : {}),
  };
}

export interface ProviderFactoryOptions {
  /** Passed to @octokit/plugin-throttling unchanged (tests only). */
  throttle?: ThrottleOverrides;
  log?: { warn(message: string): void };
  /** Replaces the `git` CLI runner (tests only). */
  runGit?: GitRunner;
}

export interface ProviderFactory {
  /** A plain function (safe to pass around unbound, e.g. into createGitopsActivities). */
  providerFor: (policy: GitopsPolicy) => GitopsProvider;
}

export function createProviderFactory(cfg: GitopsConfig, opts: ProviderFactoryOptions = {}): ProviderFactory {
  const cache = new Map<string, GitopsProvider>();
  return {
    providerFor(policy) {
      const key = `${policy.provider}:${policy.repo}`;
      let provider = cache.get(key);
      if (!provider) {
        provider = create(policy);
        cache.set(key, provider);
      }
      return provider;
    },
  };

  function create(policy: GitopsPolicy): GitopsProvider {
    if (policy.provider === 'git') {
      return new GitProvider({ repo: policy.repo, workdir: cfg.git.workdir, identity: cfg.git.author, runGit: opts.runGit });
    }
    if (!cfg.github.auth) {
      throw permanent(
        GitopsFailureTypes.GitopsNotConfigured,
        `the policy for ${policy.repo} uses the github provider, but neither GITHUB_TOKEN nor GITHUB_APP_ID/GITHUB_APP_PRIVATE_KEY/GITHUB_APP_INSTALLATION_ID is set`,
      );
    }
    const client = createGitHubClient({ baseUrl: cfg.github.apiUrl, auth: cfg.github.auth, throttle: opts.throttle, log: opts.log });
    return new GitHubProvider({ client, repo: policy.repo });
  }
}
