// ESLint flat config (`npm run lint` = `eslint src test bench scripts`). Type-checked recommended rules, the
// promise rules as errors (an un-awaited promise in an activity or handler loses its failure), and the
// workflow sandbox boundary: workflow code may import only @temporalio/workflow, @temporalio/common and types.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

const NODE_BUILTINS = [
  'fs', 'path', 'crypto', 'child_process', 'http', 'https', 'net', 'os', 'process', 'url', 'util',
  'worker_threads', 'events', 'stream', 'buffer', 'timers',
];

const WORKFLOW_SANDBOX =
  'workflow code runs in the deterministic sandbox: import only @temporalio/workflow, @temporalio/common, ' +
  'other files in src/workflows/, and types (`import type`) from the rest of src/; do I/O in an activity';

/**
 * Value imports workflow code may take from outside src/workflows/ (path under src/, imported as `../<path>`).
 * Each must stay pure (constants, or deterministic functions over plain data) with no imports of its own but
 * types; the block at the end enforces that. canary/judge.js: the Argo-style analysis verdicts the canary
 * steps take after every sample (a replay must reach the same verdict, so the workflow computes it).
 */
const WORKFLOW_SAFE_MODULES = ['mlflow/tags.js', 'canary/judge.js'];

export default defineConfig(
  { ignores: ['dist/**', 'node_modules/**', '.venv/**', '.data/**'] },
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's test()/describe() return promises the runner itself tracks.
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      // Visible, but ordinary code at a JSON/HTTP boundary should not fail the build over these.
      '@typescript-eslint/no-explicit-any': 'warn',
      '@typescript-eslint/no-unsafe-assignment': 'warn',
      '@typescript-eslint/no-unsafe-member-access': 'warn',
      '@typescript-eslint/no-unsafe-call': 'warn',
      '@typescript-eslint/no-unsafe-return': 'warn',
      '@typescript-eslint/no-unsafe-argument': 'warn',
      '@typescript-eslint/require-await': 'warn',
      '@typescript-eslint/restrict-template-expressions': 'warn',
      // Style, not bugs: `xs[0]!` reads as intent without noUncheckedIndexedAccess; `'Ready' | string`
      // documents known values of an open Kubernetes string.
      '@typescript-eslint/no-unnecessary-type-assertion': 'warn',
      '@typescript-eslint/no-redundant-type-constituents': 'warn',
      '@typescript-eslint/no-base-to-string': 'warn',
      '@typescript-eslint/prefer-promise-reject-errors': 'warn',
      'prefer-const': 'warn',
      // Activity factories return closures, so passing `acts.someActivity` around is how they are used.
      '@typescript-eslint/unbound-method': 'warn',
      '@typescript-eslint/no-unused-vars': ['warn', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    files: ['src/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: NODE_BUILTINS.map((name) => ({ name, message: `${name} is a Node built-in; ${WORKFLOW_SANDBOX}` })),
          patterns: [
            { group: ['node:*'], message: `Node built-ins are not available; ${WORKFLOW_SANDBOX}` },
            // Any package except the workflow-safe ones (relative imports are handled below). @noble/ed25519 and
            // its SHA-512 are pure, I/O-free JavaScript: the one way to verify attested decisions in the workflow.
            {
              regex: `^(?!\\.{1,2}/|node:|(${NODE_BUILTINS.join('|')})(/|$)|@temporalio/(workflow|common)(/|$)|@noble/ed25519$|@noble/hashes/sha2\\.js$)`,
              message: WORKFLOW_SANDBOX,
            },
            // Outside src/workflows: types only, so no activity or I/O code is pulled into the bundle —
            // except the import-free constant modules listed in WORKFLOW_SAFE_MODULES.
            {
              regex: `^\\.\\./(?!(${WORKFLOW_SAFE_MODULES.map((m) => m.replace(/[.]/g, '\\.')).join('|')})$)`,
              allowTypeImports: true,
              message: WORKFLOW_SANDBOX,
            },
          ],
        },
      ],
    },
  },
  {
    files: WORKFLOW_SAFE_MODULES.map((m) => `src/${m.replace(/\.js$/, '.ts')}`),
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '.', allowTypeImports: true, message: 'workflow code imports this module, so it must not import anything but types' }] },
      ],
    },
  },
);
