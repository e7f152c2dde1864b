/**
 * GitHub's official OpenAPI description (npm `@octokit/openapi`, api.github.com, OpenAPI 3.0) as a test
 * oracle: route matching, request validation (path/query parameters and JSON bodies), response validation
 * (declared status and JSON body schema) and building response objects that satisfy the schemas. The GitHub
 * double validates every request it receives and every response it sends through this, so it cannot drift.
 *
 * OpenAPI 3.0 is not JSON Schema: `nullable: true` is rewritten to JSON Schema (`type: [t, 'null']`, or
 * `anyOf [..., {type: null}]` without a type) and `oneOf` is read as `anyOf` (GitHub's alternatives overlap)
 * before ajv sees it; unknown formats (int64, uri-template…) are accepted as any string/number.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };
type Validator = ((data: unknown) => boolean) & { errors?: Array<{ instancePath: string; message?: string; params?: unknown }> | null };
interface AjvLike {
  addSchema(schema: object, key?: string, meta?: boolean, validateSchema?: boolean): unknown;
  addFormat(name: string, format: true): unknown;
  compile(schema: object): Validator;
  formats: Record<string, unknown>;
}

export interface Operation {
  method: string;
  template: string;
  operationId: string;
  pointer: string;
  regex: RegExp;
  paramNames: string[];
  literalSegments: number;
}

export interface Match {
  operation: Operation;
  pathParams: Record<string, string>;
}

const require = createRequire(import.meta.url);

export class GitHubOpenApi {
  private static instance?: GitHubOpenApi;
  readonly spec: Obj;
  private readonly ajv: AjvLike;
  private readonly operations: Operation[] = [];
  private readonly validators = new Map<string, Validator>();

  static load(): GitHubOpenApi {
    GitHubOpenApi.instance ??= new GitHubOpenApi();
    return GitHubOpenApi.instance;
  }

  private constructor() {
    const file = join(dirname(require.resolve('@octokit/openapi/package.json')), 'generated', 'api.github.com.json');
    this.spec = toJsonSchema(JSON.parse(readFileSync(file, 'utf8')) as Json) as Obj;
    const Ajv = (require('ajv') as { default: new (opts: object) => AjvLike }).default;
    const addFormats = (require('ajv-formats') as { default: (ajv: AjvLike) => void }).default;
    this.ajv = new Ajv({ strict: false, allErrors: true, logger: false });
    addFormats(this.ajv);
    for (const f of collectFormats(this.spec)) if (!(f in this.ajv.formats)) this.ajv.addFormat(f, true);
    this.ajv.addSchema({ $id: 'gh', components: this.spec.components, paths: this.spec.paths }, undefined, undefined, false);
    for (const [template, item] of Object.entries(this.spec.paths as Obj)) {
      for (const [method, op] of Object.entries(item as Obj)) {
        if (!['get', 'post', 'put', 'patch', 'delete', 'head'].includes(method)) continue;
        const paramNames: string[] = [];
        const pattern = template.split('/').map((seg) =>
          seg.replace(/\{([^}]+)\}|[^{}]+/g, (m, name?: string) => {
            if (name) {
              paramNames.push(name);
              return '([^/]+)';
            }
            return m.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
          }),
        );
        this.operations.push({
          method: method.toUpperCase(),
          template,
          operationId: specString((op as Obj).operationId, `${method} ${template} operationId`),
          pointer: pointer(['paths', template, method]),
          regex: new RegExp(`^${pattern.join('/')}$`),
          paramNames,
          literalSegments: template.split('/').filter((s) => s && !s.includes('{')).length,
        });
      }
    }
  }

  /** The documented operation for a request; the most specific template wins (`/pulls/{n}/merge` over `/pulls/{n}`). */
  match(method: string, pathname: string): Match | undefined {
    const candidates = this.operations
      .filter((o) => o.method === method.toUpperCase())
      .map((o) => ({ o, m: o.regex.exec(pathname) }))
      .filter((c): c is { o: Operation; m: RegExpExecArray } => c.m !== null)
      .sort((a, b) => b.o.literalSegments - a.o.literalSegments);
    const best = candidates[0];
    if (!best) return undefined;
    const pathParams: Record<string, string> = {};
    best.o.paramNames.forEach((n, i) => (pathParams[n] = decodeURIComponent(best.m[i + 1])));
    return { operation: best.o, pathParams };
  }

  operation(operationId: string): Operation {
    const op = this.operations.find((o) => o.operationId === operationId);
    if (!op) throw new Error(`no operation ${operationId} in GitHub's OpenAPI description`);
    return op;
  }

  /**
   * Compile the validators of these operations now (ajv takes up to seconds per schema), so validation
   * never stalls the double's event loop in the middle of a timing-sensitive exchange.
   */
  warm(operationIds: string[]): void {
    this.validatorFor(pointer(['components', 'schemas', 'basic-error']));
    for (const id of operationIds) {
      const operation = this.operation(id);
      const op = this.at(operation.pointer) as Obj;
      for (const status of Object.keys(op.responses as Obj)) {
        const p = this.responseSchemaPointer(operation, Number(status));
        if (p) this.validatorFor(p);
      }
      if (op.requestBody) this.validatorFor(`${operation.pointer}/requestBody/content/application~1json/schema`);
      for (const p of this.parameters(operation)) this.validatorFor(p.schemaPointer);
    }
  }

  /** Problems with a request, as readable lines (empty when it conforms). */
  validateRequest(m: Match, query: URLSearchParams, body: unknown): string[] {
    const problems: string[] = [];
    const op = this.at(m.operation.pointer) as Obj;
    const located = this.parameters(m.operation);
    const params = located.map((l) => l.param);
    const where = `${m.operation.method} ${m.operation.template}`;
    for (const [i, p] of params.entries()) {
      const name = specString(p.name, `${where} parameter name`);
      const raw = p.in === 'path' ? m.pathParams[name] : p.in === 'query' ? (query.get(name) ?? undefined) : undefined;
      if (p.in !== 'path' && p.in !== 'query') continue;
      if (raw === undefined) {
        if (p.required) problems.push(`${where}: missing required ${p.in} parameter ${name}`);
        continue;
      }
      const value = coerce(raw, p.schema as Obj);
      const v = this.validatorFor(located[i].schemaPointer);
      if (!v(value)) problems.push(`${where}: ${p.in} parameter ${name}=${raw}: ${describe(v)}`);
    }
    for (const key of query.keys()) {
      if (!params.some((p) => p.in === 'query' && p.name === key)) problems.push(`${where}: undocumented query parameter ${key}`);
    }
    const requestBody = op.requestBody as Obj | undefined;
    if (body === undefined) {
      if (requestBody?.required) problems.push(`${where}: the request body is required`);
    } else if (!requestBody) {
      problems.push(`${where}: the operation takes no request body`);
    } else {
      const v = this.validatorFor(`${m.operation.pointer}/requestBody/content/application~1json/schema`);
      if (!v(body)) problems.push(`${where}: request body: ${describe(v)}`);
    }
    return problems;
  }

  /**
   * Problems with a response. Rate-limit answers (403/429) and bad credentials (401) may come from any
   * endpoint — GitHub documents them for the whole REST API, not per operation — so they are checked
   * against basic-error instead of the operation's declared statuses.
   */
  validateResponse(operation: Operation, status: number, body: unknown, opts: { crossCutting?: boolean } = {}): string[] {
    const where = `${operation.method} ${operation.template} → ${status}`;
    if (opts.crossCutting) {
      if (![401, 403, 429].includes(status)) return [`${where}: only 401, 403 and 429 are answered by every endpoint`];
      const v = this.validatorFor(pointer(['components', 'schemas', 'basic-error']));
      return v(body) ? [] : [`${where}: ${describe(v)}`];
    }
    const schemaPointer = this.responseSchemaPointer(operation, status);
    if (schemaPointer === undefined) return [`${where}: status ${status} is not declared for this operation`];
    if (schemaPointer === null) return body === undefined ? [] : [`${where}: the declared response has no body`];
    const v = this.validatorFor(schemaPointer);
    return v(body) ? [] : [`${where}: ${describe(v)}`];
  }

  /** A response body for the operation and status: `overlay` plus whatever the schema requires, filled minimally. */
  buildResponse(operation: Operation, status: number, overlay: unknown): unknown {
    const p = this.responseSchemaPointer(operation, status);
    if (!p) throw new Error(`${operation.operationId} declares no JSON body for ${status}`);
    return this.build(this.at(p), overlay);
  }

  /** An instance of a component schema (`simple-user`, `repository`…) with `overlay` applied. */
  buildSchema(name: string, overlay: unknown): unknown {
    return this.build(this.at(pointer(['components', 'schemas', name])), overlay);
  }

  private responseSchemaPointer(operation: Operation, status: number): string | null | undefined {
    const responses = (this.at(operation.pointer) as Obj).responses as Obj;
    const declared = responses[String(status)];
    if (!declared) return undefined;
    const base = this.pointerOf(declared as Obj, `${operation.pointer}/responses/${status}`);
    const content = (this.deref(declared) as Obj).content as Obj | undefined;
    if (!content) return null;
    const media = 'application/json' in content ? 'application/json' : Object.keys(content)[0];
    return `${base}/content/${escapeSegment(media)}/schema`;
  }

  private build(schemaIn: Json, overlay: unknown, depth = 0): unknown {
    if (depth > 40) throw new Error('schema recursion too deep while building a fixture');
    const schema = this.deref(schemaIn) as Obj;
    if (Array.isArray(schema.allOf)) {
      if (overlay === null) return null;
      const parts = schema.allOf.map((s) => this.build(s, overlay, depth + 1));
      return parts.every((p) => p && typeof p === 'object' && !Array.isArray(p)) ? Object.assign({}, ...parts) : parts[0];
    }
    const branches = (schema.oneOf ?? schema.anyOf) as Json[] | undefined;
    if (Array.isArray(branches)) {
      const resolved = branches.map((b) => this.deref(b) as Obj);
      const fits = (b: Obj) => {
        if (overlay === undefined) return !isNullOnly(b);
        if (overlay === null) return typesOf(b).includes('null');
        if (Array.isArray(overlay)) return typesOf(b).includes('array');
        if (typeof overlay === 'object') {
          if (!(typesOf(b).includes('object') || b.properties || b.allOf)) return false;
          const props = (b.properties ?? {}) as Obj;
          return Object.entries(overlay as Obj).every(([k, v]) => {
            const ps = props[k] ? (this.deref(props[k]) as Obj) : undefined;
            return !ps?.enum || (ps.enum as Json[]).includes(v);
          });
        }
        const t = typeof overlay === 'number' ? (Number.isInteger(overlay) ? ['integer', 'number'] : ['number']) : [typeof overlay];
        return typesOf(b).some((x) => t.includes(x));
      };
      const i = resolved.findIndex(fits);
      return this.build(branches[i === -1 ? 0 : i], overlay, depth + 1);
    }
    const types = typesOf(schema);
    if (overlay === null) return null;
    if (Array.isArray(overlay)) return overlay.map((item) => this.build((schema.items ?? {}) as Json, item, depth + 1));
    if (overlay !== undefined && typeof overlay !== 'object') return overlay;
    if (types.includes('object') || schema.properties) {
      if (overlay === undefined && types.includes('null')) return null;
      const props = (schema.properties ?? {}) as Obj;
      const out: Record<string, unknown> = {};
      for (const key of (schema.required as string[] | undefined) ?? []) out[key] = this.build(props[key] ?? {}, undefined, depth + 1);
      for (const [key, value] of Object.entries((overlay ?? {}) as Obj)) out[key] = this.build(props[key] ?? {}, value, depth + 1);
      return out;
    }
    if (types.includes('null')) return null;
    if (schema.enum) return (schema.enum as Json[])[0];
    if (types.includes('string')) return sampleString(schema);
    if (types.includes('integer') || types.includes('number')) return Math.max(1, Number(schema.minimum ?? 1));
    if (types.includes('boolean')) return false;
    if (types.includes('array')) return [];
    return null;
  }

  private validatorFor(p: string): Validator {
    let v = this.validators.get(p);
    if (!v) {
      v = this.ajv.compile({ $ref: `gh#${p.split('/').map((s) => encodeURIComponent(s)).join('/')}` });
      this.validators.set(p, v);
    }
    return v;
  }

  private at(p: string): Json {
    let node: Json = this.spec;
    for (const raw of p.split('/').slice(1)) node = (node as Obj)[raw.replace(/~1/g, '/').replace(/~0/g, '~')]!;
    return node;
  }

  private deref(node: Json): Json {
    let n = node;
    for (let i = 0; i < 10 && n && typeof n === 'object' && !Array.isArray(n) && typeof n.$ref === 'string'; i++) n = this.at(n.$ref.slice(1));
    return n;
  }

  /** Path-item and operation parameters, resolved, with the pointer of each one's schema. */
  private parameters(operation: Operation): Array<{ param: Obj; schemaPointer: string }> {
    const op = this.at(operation.pointer) as Obj;
    const itemPointer = pointer(['paths', operation.template]);
    const item = this.at(itemPointer) as Obj;
    return [
      ...((item.parameters as Json[]) ?? []).map((p, i) => ({ raw: p as Obj, at: `${itemPointer}/parameters/${i}` })),
      ...((op.parameters as Json[]) ?? []).map((p, i) => ({ raw: p as Obj, at: `${operation.pointer}/parameters/${i}` })),
    ].map((l) => ({ param: this.deref(l.raw) as Obj, schemaPointer: `${this.pointerOf(l.raw, l.at)}/schema` }));
  }

  /** Pointer of a (possibly `$ref`) node: the referenced component, else where it sits. */
  private pointerOf(node: Obj, fallback: string): string {
    return typeof node.$ref === 'string' ? node.$ref.slice(1) : fallback;
  }
}

/** A member the description always gives as a string (operationId, parameter name). */
function specString(v: Json | undefined, what: string): string {
  if (typeof v !== 'string') throw new Error(`GitHub's OpenAPI description: ${what} is not a string`);
  return v;
}

// ---- OpenAPI 3.0 → JSON Schema ----

function toJsonSchema(node: Json): Json {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (!node || typeof node !== 'object') return node;
  const out: Obj = {};
  for (const [k, v] of Object.entries(node)) out[k] = toJsonSchema(v);
  // GitHub's description writes oneOf where its alternatives overlap (a 409 is `basic-error` or
  // `repository-rule-violation-error`, and every body of one is a body of the other): read it as anyOf.
  if (Array.isArray(out.oneOf)) {
    out.anyOf = out.oneOf;
    delete out.oneOf;
  }
  if (typeof out.nullable !== 'boolean') return out;
  const nullable = out.nullable;
  delete out.nullable;
  if (!nullable) return out;
  if (typeof out.type === 'string') {
    out.type = [out.type, 'null'];
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
    return out;
  }
  return { anyOf: [out, { type: 'null' }] };
}

function collectFormats(node: Json, found = new Set<string>()): Set<string> {
  if (Array.isArray(node)) for (const n of node) collectFormats(n, found);
  else if (node && typeof node === 'object') {
    if (typeof node.format === 'string') found.add(node.format);
    for (const v of Object.values(node)) collectFormats(v, found);
  }
  return found;
}

function typesOf(schema: Obj): string[] {
  return Array.isArray(schema.type) ? (schema.type as string[]) : typeof schema.type === 'string' ? [schema.type] : [];
}

function isNullOnly(schema: Obj): boolean {
  const t = typesOf(schema);
  return t.length === 1 && t[0] === 'null';
}

function sampleString(schema: Obj): string {
  switch (schema.format) {
    case 'date-time':
      return '2026-01-01T00:00:00Z';
    case 'date':
      return '2026-01-01';
    case 'uri':
      return 'https://github.example/resource';
    case 'uri-template':
      return 'https://github.example/resource{/id}';
    case 'email':
      return 'someone@example.com';
    default:
      return 'x';
  }
}

function coerce(raw: string, schema: Obj | undefined): unknown {
  const t = schema ? typesOf(schema) : [];
  if ((t.includes('integer') || t.includes('number')) && raw.trim() !== '' && !Number.isNaN(Number(raw))) return Number(raw);
  if (t.includes('boolean') && (raw === 'true' || raw === 'false')) return raw === 'true';
  return raw;
}

function describe(v: Validator): string {
  return (v.errors ?? [])
    .slice(0, 4)
    .map((e) => `${e.instancePath || '(root)'} ${e.message ?? ''} ${e.params ? JSON.stringify(e.params) : ''}`.trim())
    .join('; ');
}

function escapeSegment(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

export function pointer(segments: string[]): string {
  return `/${segments.map(escapeSegment).join('/')}`;
}
