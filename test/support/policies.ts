/** Test policies: each test names its own model `<kind>-<unique>`, and the policy file's `models:` key is the kind. */
import { parsePolicy } from '../../src/policy/load.js';
import type { PolicySource } from '../../src/activities/registry.js';

export function policiesByPrefix(text: string, fileName: string): PolicySource {
  const set = parsePolicy(text, fileName);
  return {
    policyFor(model: string) {
      const kind = set.models().find((m) => model.startsWith(`${m}-`));
      return { ...set.policyFor(kind ?? model), model };
    },
  };
}
