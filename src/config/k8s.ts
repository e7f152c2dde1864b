/**
 * Kubernetes settings: where the worker's cluster credentials come from. Unset = the client library's
 * default chain (KUBECONFIG, ~/.kube/config, then the in-cluster service account). The lead's loadConfig
 * composes this; the worker builds the client with createK8sClient.
 */
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError, parseEnv } from '../config.js';
import { KubernetesClient, loadKubeConfig, type K8sClient, type KubeConfigSource } from '../k8s/client.js';

const shape = {
  /** Path of a kubeconfig file (its current context is used). */
  MODELGATE_KUBECONFIG: z.string().min(1).optional(),
  /** true: the pod's service account (token and CA under /var/run/secrets/kubernetes.io/serviceaccount). */
  MODELGATE_K8S_IN_CLUSTER: z.enum(['true', 'false']).optional(),
  /** true: annotate the ArgoCD Application to refresh before waiting (needs `update` on applications). */
  MODELGATE_ARGOCD_REFRESH: z.enum(['true', 'false']).default('false'),
  /** Bound on one get/list/replace request. */
  MODELGATE_K8S_REQUEST_TIMEOUT_MS: z.coerce.number().int().positive().default(30_000),
};

export interface K8sConfig {
  source: KubeConfigSource;
  argocdRefresh: boolean;
  requestTimeoutMs: number;
}

export function loadK8sConfig(env: NodeJS.ProcessEnv = process.env): K8sConfig {
  const c = parseEnv(shape, env);
  if (c.MODELGATE_KUBECONFIG && c.MODELGATE_K8S_IN_CLUSTER === 'true') {
    throw new ConfigError('MODELGATE_K8S_IN_CLUSTER: cannot be true when MODELGATE_KUBECONFIG is set; choose one');
  }
  if (c.MODELGATE_KUBECONFIG && !existsSync(c.MODELGATE_KUBECONFIG)) {
    throw new ConfigError(`MODELGATE_KUBECONFIG: no file at ${c.MODELGATE_KUBECONFIG}`);
  }
  const source: KubeConfigSource = c.MODELGATE_KUBECONFIG
    ? { kind: 'file', path: c.MODELGATE_KUBECONFIG }
    : c.MODELGATE_K8S_IN_CLUSTER === 'true'
      ? { kind: 'in-cluster' }
      : { kind: 'default' };
  return {
    source,
    argocdRefresh: c.MODELGATE_ARGOCD_REFRESH === 'true',
    requestTimeoutMs: c.MODELGATE_K8S_REQUEST_TIMEOUT_MS,
  };
}

/** The real client for a loaded config; a broken kubeconfig is a ConfigError naming the key. */
export function createK8sClient(cfg: K8sConfig): K8sClient {
  try {
    return new KubernetesClient(loadKubeConfig(cfg.source), { requestTimeoutMs: cfg.requestTimeoutMs });
  } catch (err) {
    const key = cfg.source.kind === 'file' ? 'MODELGATE_KUBECONFIG' : cfg.source.kind === 'in-cluster' ? 'MODELGATE_K8S_IN_CLUSTER' : 'KUBECONFIG';
    // First line only: parser errors quote the file after it, and a kubeconfig holds credentials.
    const firstLine = (err instanceof Error ? err.message : String(err)).split('\n')[0].slice(0, 200);
    throw new ConfigError(`${key}: cannot load Kubernetes configuration: ${firstLine}`);
  }
}
