/**
 * docker-compose.yml, checked without a Docker engine: references between services resolve, every variable
 * has a default or is documented, modelgate services receive only configuration keys modelgate knows (and
 * values its config accepts), volumes exist, host ports do not collide, the search attributes match the code.
 * When a `docker-compose` (v1) or `docker compose` binary is present, `config -q` validates the file too.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { loadConfig } from '../src/config.js';
import { PROJECT_ROOT } from '../src/stack/embedded.js';
import { SEARCH_ATTRIBUTES } from '../src/workflows/definitions.js';
import { knownConfigKeys, unknownConfigKeys } from './support/config-keys.js';

const run = promisify(execFile);
const COMPOSE_PATH = join(PROJECT_ROOT, 'docker-compose.yml');
const TEXT = readFileSync(COMPOSE_PATH, 'utf8');

interface Service {
  image?: string;
  build?: string | { context: string; dockerfile?: string };
  command?: string | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  environment?: string[] | Record<string, string | number | boolean | null>;
  volumes?: string[];
  ports?: string[];
  healthcheck?: { test: string | string[] };
  restart?: string;
}

const compose = parse(TEXT) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
const services = compose.services;

/** Compose interpolation with every variable at its default (`${X:-d}`/`${X-d}` → d, `${X}` → ''), `$$` → `$`. */
function withDefaults(s: string): string {
  return s.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^}])*))?\}/g, (m, _name, op: string | undefined, word: string | undefined) => {
    if (m === '$$') return '$';
    return op === '-' || op === ':-' ? (word ?? '') : '';
  });
}

function envOf(svc: Service): Record<string, string> {
  const env = svc.environment ?? {};
  const pairs: Array<[string, string]> = Array.isArray(env)
    ? env.map((e) => {
        const i = e.indexOf('=');
        return i < 0 ? [e, ''] : [e.slice(0, i), e.slice(i + 1)];
      })
    : Object.entries(env).map(([k, v]) => [k, v == null ? '' : String(v)]);
  return Object.fromEntries(pairs.map(([k, v]) => [k, withDefaults(v)]));
}

function dependsOn(svc: Service): Array<[string, string]> {
  const d = svc.depends_on ?? [];
  return Array.isArray(d) ? d.map((n) => [n, 'service_started']) : Object.entries(d).map(([n, c]) => [n, c.condition ?? 'service_started']);
}

/** Services running modelgate's own image (built from ./Dockerfile). */
const modelgateServices = Object.entries(services).filter(([, s]) => s.build === '.' || (typeof s.build === 'object' && s.build.context === '.'));

describe('docker-compose.yml', () => {
  test('when a service depends on another, then that service exists and the condition can be met', () => {
    assert.ok(Object.keys(services).length >= 9, 'the full stack is defined');
    for (const [name, svc] of Object.entries(services)) {
      for (const [dep, condition] of dependsOn(svc)) {
        const target = services[dep];
        assert.ok(target, `${name}.depends_on names unknown service ${dep}`);
        assert.ok(['service_started', 'service_healthy', 'service_completed_successfully'].includes(condition), `${name} → ${dep}: condition ${condition}`);
        if (condition === 'service_healthy') assert.ok(target.healthcheck, `${name} waits for ${dep} to be healthy, but ${dep} has no healthcheck`);
        if (condition === 'service_completed_successfully') {
          assert.equal(target.restart ?? 'no', 'no', `${name} waits for ${dep} to complete, so ${dep} must be a one-shot (restart: "no")`);
        }
      }
    }
  });

  test('when the file uses ${VAR}, then it has a default or the header documents it', () => {
    const header = TEXT.split('\n').filter((l) => l.startsWith('#')).join('\n');
    const undocumented: string[] = [];
    const withoutEscapes = TEXT.replace(/\$\$/g, '');
    for (const m of withoutEscapes.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?+])?[^}]*\}|\$([A-Za-z_][A-Za-z0-9_]*)/g)) {
      const name = m[1] ?? m[3];
      const hasDefault = m[2] === '-' || m[2] === ':-';
      if (!hasDefault && !new RegExp(`\\b${name}\\b`).test(header)) undocumented.push(name);
    }
    assert.deepEqual(undocumented, [], 'variables without a default must be described in the header comment');
    // And every variable the header documents is used, so the list does not rot.
    const documented = [...header.matchAll(/^#\s{2,}([A-Z][A-Z0-9_]+(?:,\s*[A-Z][A-Z0-9_]+)*)/gm)].flatMap((m) => m[1].split(/,\s*/));
    for (const name of documented) assert.match(withoutEscapes, new RegExp(`\\$\\{${name}[:}-]`), `${name} is documented but unused`);
  });

  test('when env is passed to a modelgate service, then modelgate knows every key and accepts the values', () => {
    const known = knownConfigKeys();
    assert.ok(known.has('TEMPORAL_ADDRESS') && known.has('MLFLOW_TRACKING_URI') && known.has('MODELGATE_POLICY_FILE'), 'config keys found');
    assert.deepEqual(
      modelgateServices.map(([n]) => n),
      ['modelgate-worker', 'modelgate-api'],
    );
    for (const [name, svc] of modelgateServices) {
      const env = envOf(svc);
      assert.deepEqual(unknownConfigKeys(Object.keys(env), known), [], `${name} passes keys no config module reads`);
      // Values parse (addresses, URLs, enums); this throws ConfigError("KEY: reason") otherwise.
      const config = loadConfig(env);
      assert.equal(config.temporal.address, 'temporal:7233');
      assert.equal(config.mlflow.trackingUri, 'http://mlflow:5000');
      assert.equal(config.policyFile, '/app/policies/policy.yaml');
    }
    const api = envOf(services['modelgate-api']);
    assert.equal(api.MODELGATE_API_HOST, '0.0.0.0', 'the API must listen beyond the container loopback');
  });

  test('when a modelgate service runs a script, then the build produces it and the Dockerfile builds it', () => {
    const dockerfile = readFileSync(join(PROJECT_ROOT, 'Dockerfile'), 'utf8');
    assert.match(dockerfile, /^FROM node:20-slim/m);
    assert.match(dockerfile, /^RUN npm ci/m);
    assert.match(dockerfile, /^RUN npm run build/m);
    for (const [name, svc] of modelgateServices) {
      const cmd = Array.isArray(svc.command) ? svc.command : (svc.command ?? '').split(' ');
      assert.equal(cmd[0], 'node', `${name} runs node`);
      assert.ok(existsSync(join(PROJECT_ROOT, cmd[1])), `${name}: ${cmd[1]} exists after npm run build`);
    }
  });

  test('when a volume is mounted, then a named volume is declared or the bind-mounted path exists', () => {
    const declared = new Set(Object.keys(compose.volumes ?? {}));
    const used = new Set<string>();
    for (const [name, svc] of Object.entries(services)) {
      for (const v of svc.volumes ?? []) {
        const source = withDefaults(v).split(':')[0];
        if (source.startsWith('.') || source.startsWith('/')) {
          assert.ok(existsSync(join(PROJECT_ROOT, source)), `${name} bind-mounts missing path ${source}`);
        } else {
          assert.ok(declared.has(source), `${name} mounts undeclared volume ${source}`);
          used.add(source);
        }
      }
      const build = typeof svc.build === 'string' ? { context: svc.build } : svc.build;
      if (build) assert.ok(existsSync(join(PROJECT_ROOT, build.context, build.dockerfile ?? 'Dockerfile')), `${name}: Dockerfile of its build exists`);
    }
    assert.deepEqual([...declared].filter((v) => !used.has(v)), [], 'every declared volume is used');
  });

  test('when ports are published, then no host port is used twice', () => {
    const seen = new Map<string, string>();
    for (const [name, svc] of Object.entries(services)) {
      for (const p of svc.ports ?? []) {
        const parts = withDefaults(p).split(':');
        assert.ok(parts.length === 3, `${name}: port ${p} names host address, host port and container port`);
        const host = parts[1];
        assert.ok(!seen.has(host), `host port ${host} published by ${seen.get(host)} and ${name}`);
        seen.set(host, name);
      }
    }
    assert.deepEqual([...seen.keys()].sort(), ['5000', '7233', '8080', '8233', '9000', '9001']);
  });

  test("when the stack is set up, then it registers exactly the code's search attributes with their types", () => {
    const script = [services['temporal-setup'].command].flat().join('\n');
    const listed = /for sa in ([^;]+);/.exec(script);
    assert.ok(listed, 'temporal-setup loops over Name=Type pairs');
    const pairs = Object.fromEntries(listed[1].trim().split(/\s+/).map((p) => p.split('=') as [string, string]));
    assert.deepEqual(pairs, SEARCH_ATTRIBUTES);
    assert.match(script, /temporal operator search-attribute create/);
  });

  test('when a compose binary is installed, then `config -q` accepts the file', async (t) => {
    // [probe that the tool exists, validation command]; Debian's docker-compose v1 or the docker CLI plugin.
    const candidates: Array<[string[], string[]]> = [
      [['docker-compose', 'version'], ['docker-compose', '-f', COMPOSE_PATH, 'config', '-q']],
      [['docker', 'compose', 'version'], ['docker', 'compose', '-f', COMPOSE_PATH, 'config', '-q']],
    ];
    for (const [probe, [bin, ...args]] of candidates) {
      try {
        await run(probe[0], probe.slice(1), { timeout: 30_000 });
      } catch {
        continue;
      }
      try {
        await run(bin, args, { cwd: PROJECT_ROOT, timeout: 60_000 });
      } catch (err) {
        const e = err as Error & { stderr?: string };
        assert.fail(`${bin} ${args.join(' ')} rejected docker-compose.yml: ${(e.stderr ?? e.message).trim()}`);
      }
      return;
    }
    t.skip('no docker-compose or docker compose plugin on this machine');
  });
});
