/**
 * What CLI commands share: configuration (validated once), a lazily connected Temporal client and MLflow
 * client, and the one-line error exit every command uses.
 */
import type { Client } from '@temporalio/client';
import { loadConfig, type Config } from '../config.js';
import { connectClient } from '../client.js';
import { MlflowClient } from '../mlflow/client.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { gitopsServingReader } from '../audit/gitops-serving.js';
import type { ServingReader } from '../audit/types.js';
import { createProviderFactory, loadGitopsConfig } from '../config/gitops.js';
import { loadPolicyFile } from '../policy/load.js';

export interface CliContext {
  config: Config;
  temporalAddress: string;
  mlflowUri: string;
  client(): Promise<Client>;
  mlflow(): MlflowClient;
  /**
   * What the GitOps manifests say is deployed, for `audit`: read with the policy file and the GitOps settings
   * (GITHUB_TOKEN / App…); undefined when the policy file cannot be read (the audit then answers from MLflow
   * and Temporal alone, and says so).
   */
  serving(): ServingReader | undefined;
  close(): Promise<void>;
}

export function createContext(env: NodeJS.ProcessEnv = process.env): CliContext {
  const config = loadConfig(env);
  // Without explicit addresses the CLI talks to the embedded stack that `npm start` runs.
  const temporalAddress = config.temporal.address ?? `127.0.0.1:${config.embedded.temporalPort}`;
  const mlflowUri = config.mlflow.trackingUri ?? `http://127.0.0.1:${config.embedded.mlflowPort}`;
  let clientPromise: Promise<Client> | undefined;
  let mlflow: MlflowClient | undefined;
  return {
    config,
    temporalAddress,
    mlflowUri,
    client() {
      clientPromise ??= connectClient({
        address: temporalAddress,
        namespace: config.temporal.namespace,
        apiKey: config.temporal.apiKey,
        tls: config.temporal.tls,
      }).catch((err: unknown) => {
        throw new CliError(`cannot reach Temporal at ${temporalAddress}: ${err instanceof Error ? err.message : String(err)}`);
      });
      return clientPromise;
    },
    mlflow() {
      mlflow ??= new MlflowClient({ trackingUri: mlflowUri, auth: config.mlflow.auth, timeoutMs: config.mlflow.timeoutMs });
      return mlflow;
    },
    serving() {
      if (!existsSync(config.policyFile)) return undefined;
      // Lazy and fault-tolerant: a broken policy file or GitOps setting becomes a note in the audit (collectAudit
      // catches what describe throws), never a failed audit. The CLI keeps its own git cache, apart from a
      // worker's, so the two processes never fetch into one directory.
      let reader: ServingReader | undefined;
      const open = (): ServingReader => {
        if (reader) return reader;
        const policies = loadPolicyFile(config.policyFile);
        const gitops = loadGitopsConfig(env);
        const providers = createProviderFactory({ ...gitops, git: { ...gitops.git, workdir: join(gitops.git.workdir, 'cli') } });
        reader = gitopsServingReader({ policyFor: (m) => policies.policyFor(m), providerFor: (p) => providers.providerFor(p) });
        return reader;
      };
      return { describe: (model) => Promise.resolve().then(() => open().describe(model)) };
    },
    async close() {
      if (clientPromise) await (await clientPromise.catch(() => undefined))?.connection.close();
      await mlflow?.close?.();
    },
  };
}

/** An error meant for the person at the terminal: printed as one line, exit code 1. */
export class CliError extends Error {
  override name = 'CliError';
}
