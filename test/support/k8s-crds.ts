/**
 * The published CRD schemas as validators, so the Kubernetes API double can only serve objects a real cluster
 * with these CRDs would hold. They are read in place from MODELGATE_CRD_DIR (default: ../shared/crds beside the
 * project root) and never copied into the project. Two Kubernetes behaviours are emulated on top of plain
 * JSON Schema: unknown fields are rejected where the apiserver would silently prune them (a misspelt status
 * field must fail a test, not vanish), and `x-kubernetes-list-type` set/map uniqueness.
 * Compiling the whole KServe schema (~2 MB, the pod spec repeated per component) costs ~30 s, so big object
 * nodes are walked by hand and only the subschemas of fields an object actually has get compiled (cached).
 *
 * Without the schemas (a fresh clone has no ../shared), the contract checks skip with `crdSchemasMissing()` as
 * their reason, and the kinds fall back to a structural check of what every such object must be (apiVersion,
 * kind, metadata, the CRD's top-level fields only, spec and status objects), so the double still refuses junk.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Ajv, type AnySchemaObject, type ValidateFunction } from 'ajv';
import formats from 'ajv-formats';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../../src/stack/embedded.js';
import { ARGO_APPLICATIONS, INFERENCE_SERVICES, type K8sObject, type ResourceKind } from '../../src/k8s/types.js';

export const CRD_FILES = ['kserve-inferenceservices.yaml', 'argocd-application.yaml'];

/** Where the schemas are read from: `$MODELGATE_CRD_DIR`, else `<project root>/../shared/crds`. */
export function crdDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.MODELGATE_CRD_DIR ? resolve(env.MODELGATE_CRD_DIR) : join(PROJECT_ROOT, '..', 'shared', 'crds');
}

/** One published CRD file, by name (one of CRD_FILES). */
export function crdPath(file: string): string {
  return join(crdDir(), file);
}

let missing: { reason: string | undefined } | undefined;

/**
 * Why the contract checks (objects against the published CRD schemas) cannot run: undefined when every file
 * of CRD_FILES is in crdDir(). Pass it as a test's `skip`. The first call that finds them missing says so
 * on stderr, once per process.
 */
export function crdSchemasMissing(): string | undefined {
  if (!missing) {
    const dir = crdDir();
    const absent = CRD_FILES.filter((f) => !existsSync(join(dir, f)));
    const reason = absent.length
      ? `no published CRD schemas in ${dir} (missing ${absent.join(', ')}; set MODELGATE_CRD_DIR to where they are)`
      : undefined;
    if (reason) {
      process.stderr.write(
        `modelgate tests: CRD schema directory ${dir} is missing ${absent.join(', ')}: contract checks against the published CRDs are skipped, the Kubernetes double checks object structure only\n`,
      );
    }
    missing = { reason };
  }
  return missing.reason;
}

export interface CrdKind extends ResourceKind {
  /** The served version has a status subresource: writes to the main resource leave status alone. */
  statusSubresource: boolean;
  /** What `check` holds objects to: the published schema, or (schemas absent) the structural fallback. */
  checkedAgainst: 'crd' | 'structure';
  /** The object's top-level fields, and those of them it must have (sorted). */
  topLevel: { fields: string[]; required: string[] };
  /** Problems with the object, empty when it conforms. */
  check(obj: unknown): string[];
}

interface CrdDoc {
  kind: string;
  spec: {
    group: string;
    names: { kind: string; plural: string };
    versions: Array<{ name: string; served: boolean; schema: { openAPIV3Schema: AnySchemaObject }; subresources?: { status?: object } }>;
  };
}

let cache: Map<string, CrdKind> | undefined;

/**
 * Keyed by `<group>/<plural>`; compiled once per process (the KServe schema is ~2 MB). Without the schemas
 * (crdSchemasMissing()), the structural fallback kinds.
 */
export function crdKinds(): Map<string, CrdKind> {
  if (cache) return cache;
  if (crdSchemasMissing()) return (cache = structuralKinds());
  const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: true });
  (formats as unknown as { default: (a: Ajv) => void }).default(ajv);
  ajv.addKeyword({ keyword: 'x-kubernetes-preserve-unknown-fields' });
  ajv.addKeyword({ keyword: 'x-kubernetes-int-or-string' });
  ajv.addKeyword({ keyword: 'x-kubernetes-map-type' });
  ajv.addKeyword({ keyword: 'x-kubernetes-list-map-keys' });
  ajv.addKeyword({ keyword: 'x-kubernetes-embedded-resource' });
  ajv.addKeyword({ keyword: 'x-kubernetes-validations' });
  ajv.addKeyword({
    keyword: 'x-kubernetes-list-type',
    schemaType: 'string',
    validate: listTypeValidator,
    errors: false,
  });
  const kinds = new Map<string, CrdKind>();
  for (const file of CRD_FILES) {
    const crd = readCrd(crdPath(file));
    if (crd.kind !== 'CustomResourceDefinition') throw new Error(`${file}: not a CustomResourceDefinition`);
    const version = crd.spec.versions.find((v) => v.served);
    if (!version) throw new Error(`${file}: no served version`);
    const root = version.schema.openAPIV3Schema;
    const validate = lazyValidator(ajv, structural(root) as AnySchemaObject);
    const { group } = crd.spec;
    const { kind, plural } = crd.spec.names;
    const apiVersion = `${group}/${version.name}`;
    kinds.set(`${group}/${plural}`, {
      group,
      version: version.name,
      plural,
      kind,
      statusSubresource: !!version.subresources?.status,
      checkedAgainst: 'crd',
      topLevel: { fields: Object.keys((root.properties as object | undefined) ?? {}).sort(), required: [...((root.required as string[] | undefined) ?? [])].sort() },
      check: (obj: unknown) => identity(obj, apiVersion, kind).concat(validate(obj, '')),
    });
  }
  cache = kinds;
  return kinds;
}

/** What the apiserver checks of any object before its CRD schema: the type it is sent as, and its name. */
function identity(obj: unknown, apiVersion: string, kind: string): string[] {
  const problems: string[] = [];
  const o = obj as K8sObject;
  if (o?.apiVersion !== apiVersion) problems.push(`apiVersion is ${String(o?.apiVersion)}, expected ${apiVersion}`);
  if (o?.kind !== kind) problems.push(`kind is ${String(o?.kind)}, expected ${kind}`);
  if (!o?.metadata?.name) problems.push('metadata.name is missing');
  return problems;
}

/**
 * The two kinds as modelgate's types describe them, checked only for shape when the published schemas are
 * absent: identity, the CRD's top-level fields and nothing else (a misspelt `status` is refused), required
 * top-level fields, and object-valued spec/status. Problems read like the schema validator's. The k8s-double
 * contract test checks these facts against the CRDs when they are there.
 */
export function structuralKinds(): Map<string, CrdKind> {
  const shapes: Array<{ kind: ResourceKind; statusSubresource: boolean; fields: string[]; required: string[] }> = [
    { kind: INFERENCE_SERVICES, statusSubresource: true, fields: ['apiVersion', 'kind', 'metadata', 'spec', 'status'], required: [] },
    { kind: ARGO_APPLICATIONS, statusSubresource: false, fields: ['apiVersion', 'kind', 'metadata', 'operation', 'spec', 'status'], required: ['metadata', 'spec'] },
  ];
  const kinds = new Map<string, CrdKind>();
  for (const { kind: k, statusSubresource, fields, required } of shapes) {
    const objectFields = fields.filter((f) => f !== 'apiVersion' && f !== 'kind');
    kinds.set(`${k.group}/${k.plural}`, {
      ...k,
      statusSubresource,
      checkedAgainst: 'structure',
      topLevel: { fields: [...fields].sort(), required: [...required].sort() },
      check(obj: unknown): string[] {
        const problems = identity(obj, `${k.group}/${k.version}`, k.kind);
        if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return problems.concat('/ must be object');
        const o = obj as Record<string, unknown>;
        for (const key of required) if (!(key in o)) problems.push(`/ must have required property '${key}'`);
        for (const [key, value] of Object.entries(o)) {
          if (!fields.includes(key)) problems.push(`/ must NOT have additional properties (${key})`);
          else if (objectFields.includes(key) && (value === null || typeof value !== 'object' || Array.isArray(value))) problems.push(`/${key} must be object`);
        }
        return problems;
      },
    });
  }
  return kinds;
}

/**
 * Parsing the 2 MB KServe YAML takes seconds on a busy machine, so the parsed document is cached as JSON
 * under the temp folder, addressed by the YAML's content hash (never stale; a changed file is a new entry).
 */
function readCrd(path: string): CrdDoc {
  const text = readFileSync(path, 'utf8');
  const dir = join(tmpdir(), 'modelgate-crd-cache');
  const cached = join(dir, `${createHash('sha256').update(text).digest('hex')}.json`);
  try {
    return JSON.parse(readFileSync(cached, 'utf8')) as CrdDoc;
  } catch {
    const doc = parse(text) as CrdDoc;
    mkdirSync(dir, { recursive: true });
    const partial = `${cached}.${process.pid}.tmp`;
    writeFileSync(partial, JSON.stringify(doc));
    renameSync(partial, cached); // atomic: a concurrent reader sees all or nothing
    return doc;
  }
}

/** Nodes bigger than this (serialized) are walked instead of compiled whole. */
const COMPILE_LIMIT = 30_000;
/** Keywords the hand walk understands; a big node with any other keyword is compiled whole. */
const WALKED = new Set(['type', 'properties', 'required', 'additionalProperties', 'x-kubernetes-preserve-unknown-fields']);

type Check = (data: unknown, path: string) => string[];

function lazyValidator(ajv: Ajv, schema: AnySchemaObject): Check {
  const compiled = new WeakMap<object, ValidateFunction>();
  const walkable = new WeakMap<object, boolean>();
  const isWalkable = (node: AnySchemaObject): boolean => {
    let w = walkable.get(node);
    if (w === undefined) {
      w = node.type === 'object' && !!node.properties && Object.keys(node).every((k) => WALKED.has(k)) && JSON.stringify(node).length > COMPILE_LIMIT;
      walkable.set(node, w);
    }
    return w;
  };
  const walk = (node: AnySchemaObject, data: unknown, path: string): string[] => {
    if (!isWalkable(node)) {
      let fn = compiled.get(node);
      if (!fn) {
        fn = ajv.compile(node);
        compiled.set(node, fn);
      }
      if (fn(data)) return [];
      return (fn.errors ?? []).map((e) => {
        const extra = e.keyword === 'additionalProperties' ? ` (${String(e.params.additionalProperty)})` : '';
        return `${path}${e.instancePath || (path ? '' : '/')} ${e.message ?? e.keyword}${extra}`;
      });
    }
    if (data === null || typeof data !== 'object' || Array.isArray(data)) return [`${path || '/'} must be object`];
    const problems: string[] = [];
    const props = node.properties as Record<string, AnySchemaObject>;
    for (const key of (node.required as string[] | undefined) ?? []) {
      if (!(key in data)) problems.push(`${path || '/'} must have required property '${key}'`);
    }
    for (const [key, value] of Object.entries(data)) {
      const sub = props[key];
      if (sub) problems.push(...walk(sub, value, `${path}/${key}`));
      else if (node.additionalProperties === false) problems.push(`${path || '/'} must NOT have additional properties (${key})`);
      else if (node.additionalProperties && typeof node.additionalProperties === 'object') {
        problems.push(...walk(node.additionalProperties as AnySchemaObject, value, `${path}/${key}`));
      }
    }
    return problems;
  };
  return (data, path) => walk(schema, data, path);
}

/**
 * A copy of the schema where every object node with declared `properties` (and no
 * `additionalProperties` / `x-kubernetes-preserve-unknown-fields`) rejects other fields.
 */
function structural(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(structural);
  if (!node || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
    if (k === 'description') continue;
    if (k === 'properties' && v && typeof v === 'object') {
      out.properties = Object.fromEntries(Object.entries(v).map(([p, sub]) => [p, structural(sub)]));
    } else if (k === 'enum' || k === 'default' || k === 'required' || k === 'x-kubernetes-list-map-keys') {
      out[k] = v;
    } else {
      out[k] = structural(v);
    }
  }
  if (out.properties && out.additionalProperties === undefined && out['x-kubernetes-preserve-unknown-fields'] !== true) {
    out.additionalProperties = false;
  }
  return out;
}

/** `set`: items unique; `map`: items unique by `x-kubernetes-list-map-keys`; `atomic`: anything. */
function listTypeValidator(listType: string, data: unknown, parentSchema?: AnySchemaObject): boolean {
  if (!Array.isArray(data) || listType === 'atomic') return true;
  const keyOf =
    listType === 'map'
      ? (item: unknown) => JSON.stringify(((parentSchema?.['x-kubernetes-list-map-keys'] as string[]) ?? []).map((k) => (item as Record<string, unknown>)?.[k]))
      : (item: unknown) => JSON.stringify(item);
  return new Set(data.map(keyOf)).size === data.length;
}
