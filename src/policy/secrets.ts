/**
 * A resolved policy is recorded in workflow history, returned by the state query and quoted in logs, so a
 * credential written into the policy file would leak everywhere it goes. The loader therefore refuses any
 * string in the file that carries one in a URL (see hasUrlCredentials), before anything else is validated,
 * and says where that credential belongs instead. The value itself is never quoted.
 */
import { isMap, isScalar, isSeq, type Node } from 'yaml';
import { hasUrlCredentials } from '../util/url-credentials.js';

export type Path = Array<string | number>;

export interface CredentialInFile {
  /** The scalar holding the credential (for its line and column). */
  node: Node;
  path: Path;
  message: string;
}

const PREFIX = 'contains credentials in the URL;';

/** The first string scalar, in file order, that carries a URL credential: values, keys, unused `x-` blocks alike. */
export function findCredential(root: unknown): CredentialInFile | undefined {
  return walk(root, []);
}

function walk(node: unknown, path: Path): CredentialInFile | undefined {
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '?';
      const inKey = walk(pair.key, [...path, key]);
      if (inKey) return inKey;
      const inValue = walk(pair.value, [...path, key]);
      if (inValue) return inValue;
    }
  } else if (isSeq(node)) {
    for (const [i, item] of node.items.entries()) {
      const found = walk(item, [...path, i]);
      if (found) return found;
    }
  } else if (isScalar(node) && typeof node.value === 'string' && hasUrlCredentials(node.value)) {
    return { node, path, message: `${PREFIX} ${whereInstead(path)}` };
  }
  // Aliases point at a node already walked where it is defined.
  return undefined;
}

/** Where the credential of the field at `path` is configured instead. */
function whereInstead(path: Path): string {
  const names = path.filter((s): s is string => typeof s === 'string');
  const field = names.at(-1);
  if (field === 'repo') {
    return 'use a git credential helper or SSH key (provider git), or GITHUB_TOKEN / the GITHUB_APP_* keys (provider github), see docs/gitops.md; never the policy file';
  }
  if (field === 'smokeUrl') {
    return 'the smoke probe sends no credentials, so give it an unauthenticated in-cluster readiness URL (see docs/policy.md); never credentials in the policy file';
  }
  if (names.includes('storageUriPrefixMap')) {
    return "storage credentials belong in KServe's storage secret on the InferenceService's service account; never in the policy file";
  }
  return 'keep credentials in the environment or a mounted secret (see docs/policy.md); never in the policy file';
}
