/**
 * Read-modify-write with optimistic concurrency: every replace carries the resourceVersion it read, and a
 * 409 Conflict (someone wrote in between) means read again and reapply the change — never overwrite blindly.
 */
import type { K8sClient } from './client.js';
import { describeCall, isK8sStatus } from './errors.js';
import { resourceName, type K8sObject, type ResourceKind } from './types.js';

export interface UpdateResult {
  /** The object after the write, or as read when `mutate` said nothing needed changing. */
  object?: K8sObject;
  written: boolean;
  conflicts: number;
}

/**
 * `mutate` gets a private copy of the current object and returns the object to write, or undefined when
 * it is already as wanted. A missing object is reported as `{ object: undefined, written: false }`.
 */
export async function updateWithRetry(
  client: K8sClient,
  kind: ResourceKind,
  namespace: string,
  name: string,
  mutate: (current: K8sObject) => K8sObject | undefined,
  maxAttempts = 5,
): Promise<UpdateResult> {
  let conflicts = 0;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const current = await client.get(kind, namespace, name);
    if (!current) return { object: undefined, written: false, conflicts };
    const next = mutate(structuredClone(current));
    if (!next) return { object: current, written: false, conflicts };
    try {
      return { object: await client.replace(kind, namespace, name, next), written: true, conflicts };
    } catch (err) {
      if (!isK8sStatus(err, 409)) throw err;
      conflicts++;
    }
  }
  const site = describeCall({ verb: 'update', resource: resourceName(kind), namespace, name });
  throw new Error(`${site}: still conflicting (409) after ${maxAttempts} attempts`);
}
