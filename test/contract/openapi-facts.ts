/**
 * The facts of an OpenAPI 3.0 document that the API tests check response bodies against, and the
 * comparison of the project's contract (test/contract/*-contract.json) with an upstream spec.
 *
 * A fact is what decides whether a body is valid: paths, methods, statuses, media types, and in
 * schemas the keywords of FACT_KEYWORDS. Text (descriptions, examples, titles, summaries) and
 * defaults are left out, so the contract holds what the specs require, not how they say it.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** One response the tests validate: `get /v3/sessions 200`. */
export type OperationKey = { method: string; path: string; status: string };

/** An OpenAPI-shaped contract: `paths` with only the responses the tests use, and the schemas they reference. */
export type Contract = {
  openapi: string;
  paths: Record<string, Record<string, { responses: Record<string, JsonObject> }>>;
  components: { schemas: Record<string, JsonObject> };
};

/** One way the contract and the upstream spec disagree, at a JSON path of the contract. */
export type Difference = { path: string; message: string };

/** Schema keywords that take part in validation; every other keyword is text or annotation. */
export const FACT_KEYWORDS = [
  '$ref', 'type', 'format', 'nullable', 'enum', 'required', 'properties', 'additionalProperties', 'items',
  'allOf', 'oneOf', 'anyOf', 'not', 'discriminator',
  'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf',
  'minLength', 'maxLength', 'pattern', 'minItems', 'maxItems', 'uniqueItems', 'minProperties', 'maxProperties',
  'readOnly', 'writeOnly',
] as const;

const SCHEMA_LISTS = new Set(['allOf', 'oneOf', 'anyOf']);
const SCHEMA_REF = /^#\/components\/schemas\/([^/]+)$/;

const isObject = (value: Json | undefined): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

/** `$.paths['/v3/sessions'].get`: dotted where a key is an identifier, bracketed otherwise. */
export function jsonPath(keys: readonly string[]): string {
  return '$' + keys.map((key) => (/^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `['${key}']`)).join('');
}

/** Follows a local `$ref` (`#/components/...`, `#/paths/~1v2~1images`) to its target, through chains of refs. */
export function resolveRef(root: JsonObject, node: Json | undefined): Json | undefined {
  const seen = new Set<string>();
  let current = node;
  while (isObject(current) && typeof current.$ref === 'string') {
    const ref = current.$ref;
    if (!ref.startsWith('#/') || seen.has(ref)) throw new Error(`unresolvable $ref ${ref}`);
    seen.add(ref);
    current = ref
      .slice(2)
      .split('/')
      .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
      .reduce<Json | undefined>((at, part) => (isObject(at) ? at[part] : undefined), root);
  }
  return current;
}

/** A schema with only its FACT_KEYWORDS, in that order, recursively; `$ref`s are kept as they are. */
export function projectSchema(schema: Json): Json {
  if (!isObject(schema)) return schema;
  const out: JsonObject = {};
  for (const keyword of FACT_KEYWORDS) {
    const value = schema[keyword];
    if (value === undefined) continue;
    if (keyword === 'properties' && isObject(value)) {
      out.properties = Object.fromEntries(Object.entries(value).map(([name, property]) => [name, projectSchema(property)]));
    } else if (SCHEMA_LISTS.has(keyword) && Array.isArray(value)) {
      out[keyword] = value.map(projectSchema);
    } else if (keyword === 'items' || keyword === 'not' || keyword === 'additionalProperties') {
      out[keyword] = projectSchema(value);
    } else {
      out[keyword] = value;
    }
  }
  return out;
}

/** The response object an upstream operation gives for `status`, with a `$ref`ed response followed. */
function upstreamResponse(spec: JsonObject, key: OperationKey): JsonObject | string {
  const pathItem = resolveRef(spec, (spec.paths as JsonObject | undefined)?.[key.path]);
  if (!isObject(pathItem)) return `has no path ${key.path}`;
  const operation = pathItem[key.method];
  if (!isObject(operation)) return `has no ${key.method.toUpperCase()} ${key.path}`;
  const response = resolveRef(spec, (operation.responses as JsonObject | undefined)?.[key.status]);
  if (!isObject(response)) return `has no ${key.status} response for ${key.method.toUpperCase()} ${key.path}`;
  return response;
}

/** Replaces each `$ref` into the middle of a schema (`.../V3Options/properties/batch_size`) with the facts it points at. */
function inlineDeepRefs(spec: JsonObject, node: Json): Json {
  if (Array.isArray(node)) return node.map((item) => inlineDeepRefs(spec, item));
  if (!isObject(node)) return node;
  if (typeof node.$ref === 'string' && !SCHEMA_REF.test(node.$ref)) return inlineDeepRefs(spec, projectSchema(resolveRef(spec, node) ?? null));
  return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, inlineDeepRefs(spec, value)]));
}

function schemaRefsIn(node: Json, into: Set<string>): void {
  if (Array.isArray(node)) node.forEach((item) => schemaRefsIn(item, into));
  else if (isObject(node)) {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') {
        const name = SCHEMA_REF.exec(value)?.[1];
        if (!name) throw new Error(`a schema $ref the contract cannot hold: ${value}`);
        into.add(name);
      } else schemaRefsIn(value, into);
    }
  }
}

/**
 * Projects the facts of `keys` out of an upstream spec into a contract: each response's media
 * types and schema, and every component schema they reach. How the contract files were written.
 */
export function projectContract(spec: JsonObject, keys: readonly OperationKey[]): Contract {
  const contract: Contract = { openapi: String(spec.openapi), paths: {}, components: { schemas: {} } };
  for (const key of keys) {
    const response = upstreamResponse(spec, key);
    if (typeof response === 'string') throw new Error(`the upstream spec ${response}`);
    const content = isObject(response.content) ? response.content : {};
    const projected: JsonObject = {
      content: Object.fromEntries(Object.entries(content).map(([media, body]) => [media, { schema: inlineDeepRefs(spec, projectSchema(isObject(body) ? body.schema ?? {} : {})) }])),
    };
    const operations = (contract.paths[key.path] ??= {});
    (operations[key.method] ??= { responses: {} }).responses[key.status] = projected;
  }
  const pending = new Set<string>();
  schemaRefsIn(contract.paths as Json, pending);
  const schemas = (spec.components as JsonObject | undefined)?.schemas as JsonObject | undefined;
  for (const name of pending) {
    const schema = schemas?.[name];
    if (!isObject(schema)) throw new Error(`the upstream spec has no schema ${name}`);
    contract.components.schemas[name] = inlineDeepRefs(spec, projectSchema(schema)) as JsonObject;
    schemaRefsIn(contract.components.schemas[name], pending); // a Set visits what is added while iterating
  }
  contract.components.schemas = Object.fromEntries(Object.entries(contract.components.schemas).sort(([a], [b]) => a.localeCompare(b)));
  return contract;
}

/** Every (method, path, status) a contract holds, in its order. */
export function contractOperations(contract: Contract): OperationKey[] {
  return Object.entries(contract.paths).flatMap(([path, operations]) =>
    Object.entries(operations).flatMap(([method, { responses }]) => Object.keys(responses).map((status) => ({ method, path, status }))),
  );
}

const show = (value: Json | undefined) => (value === undefined ? 'nothing' : JSON.stringify(value));

/** Compares two schemas' facts, following `$ref`s on both sides; a referenced schema is compared once, under its own path. */
class SchemaComparer {
  readonly differences: Difference[] = [];
  readonly schemasChecked = new Set<string>();
  private readonly pairsSeen = new Set<string>();

  constructor(
    private readonly contract: Contract,
    private readonly upstream: JsonObject,
  ) {}

  compare(path: string[], ours: Json | undefined, theirs: Json | undefined): void {
    let at = path;
    const ourRef = isObject(ours) && typeof ours.$ref === 'string' ? ours.$ref : undefined;
    const theirRef = isObject(theirs) && typeof theirs.$ref === 'string' ? theirs.$ref : undefined;
    if (ourRef !== undefined || theirRef !== undefined) {
      const pair = `${ourRef ?? JSON.stringify(path)}|${theirRef ?? ''}`;
      if (this.pairsSeen.has(pair)) return;
      this.pairsSeen.add(pair);
      if (ourRef !== undefined) {
        const name = SCHEMA_REF.exec(ourRef)?.[1];
        if (name === undefined || !isObject(this.contract.components.schemas[name])) {
          this.differ(path, `the contract's $ref ${ourRef} names no schema of the contract`);
          return;
        }
        this.schemasChecked.add(name);
        at = ['components', 'schemas', name];
        ours = this.contract.components.schemas[name];
      }
      if (theirRef !== undefined) theirs = resolveRef(this.upstream, theirs);
    }
    if (!isObject(ours) || !isObject(theirs)) {
      if (JSON.stringify(ours) !== JSON.stringify(theirs)) this.differ(at, `contract ${show(ours)}, upstream ${show(theirs)}`);
      return;
    }
    const projected = projectSchema(theirs) as JsonObject;
    const keywords = new Set([...Object.keys(ours), ...Object.keys(projected)].filter((keyword) => keyword !== '$ref'));
    for (const keyword of keywords) this.compareKeyword([...at, keyword], keyword, ours[keyword], projected[keyword]);
  }

  private compareKeyword(path: string[], keyword: string, ours: Json | undefined, theirs: Json | undefined): void {
    if (ours === undefined || theirs === undefined) {
      if (ours !== theirs) this.differ(path, ours === undefined ? `the contract lacks ${show(theirs)}` : `upstream lacks ${show(ours)}`);
    } else if (keyword === 'properties' && isObject(ours) && isObject(theirs)) {
      for (const name of new Set([...Object.keys(ours), ...Object.keys(theirs)])) {
        if (!(name in theirs)) this.differ([...path, name], 'upstream has no such property');
        else if (!(name in ours)) this.differ([...path, name], 'the contract lacks this property');
        else this.compare([...path, name], ours[name], theirs[name]);
      }
    } else if ((keyword === 'required' || keyword === 'enum') && Array.isArray(ours) && Array.isArray(theirs)) {
      // Sets: their order does not change what is valid.
      const key = (value: Json) => JSON.stringify(value);
      const missing = theirs.filter((value) => !ours.map(key).includes(key(value)));
      const extra = ours.filter((value) => !theirs.map(key).includes(key(value)));
      if (missing.length) this.differ(path, `the contract lacks ${missing.map(show).join(', ')}`);
      if (extra.length) this.differ(path, `upstream lacks ${extra.map(show).join(', ')}`);
    } else if (SCHEMA_LISTS.has(keyword) && Array.isArray(ours) && Array.isArray(theirs)) {
      if (ours.length !== theirs.length) this.differ(path, `contract has ${ours.length} schemas, upstream ${theirs.length}`);
      else ours.forEach((schema, index) => this.compare([...path, String(index)], schema, theirs[index]));
    } else if ((keyword === 'items' || keyword === 'not' || keyword === 'additionalProperties') && (isObject(ours) || isObject(theirs))) {
      this.compare(path, ours, theirs);
    } else if (JSON.stringify(ours) !== JSON.stringify(theirs)) {
      this.differ(path, `contract ${show(ours)}, upstream ${show(theirs)}`);
    }
  }

  differ(path: string[], message: string): void {
    this.differences.push({ path: jsonPath(path), message });
  }
}

/**
 * Checks a contract against an upstream spec: for every operation and status the contract
 * holds, the upstream has it with the same media types, and every fact of its schema (followed
 * through `$ref`s on both sides) matches. Returns the differences and what was checked.
 */
export function contractDifferences(contract: Contract, upstream: JsonObject): { differences: Difference[]; operations: number; schemas: number } {
  const comparer = new SchemaComparer(contract, upstream);
  const operations = contractOperations(contract);
  for (const key of operations) {
    const at = ['paths', key.path, key.method, 'responses', key.status];
    const theirs = upstreamResponse(upstream, key);
    if (typeof theirs === 'string') {
      comparer.differ(at, `upstream ${theirs}`);
      continue;
    }
    const ours = contract.paths[key.path]?.[key.method]?.responses[key.status]?.content;
    const theirContent = isObject(theirs.content) ? theirs.content : {};
    for (const media of new Set([...Object.keys(isObject(ours) ? ours : {}), ...Object.keys(theirContent)])) {
      const ourBody = isObject(ours) ? ours[media] : undefined;
      const theirBody = theirContent[media];
      if (!isObject(theirBody)) comparer.differ([...at, 'content', media], 'upstream has no such media type');
      else if (!isObject(ourBody)) comparer.differ([...at, 'content', media], 'the contract lacks this media type');
      else comparer.compare([...at, 'content', media, 'schema'], ourBody.schema, theirBody.schema);
    }
  }
  return { differences: comparer.differences, operations: operations.length, schemas: comparer.schemasChecked.size };
}
