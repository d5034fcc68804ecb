import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbSourceStore } from '../../functions/adapters/dynamodb/dynamodb-source-store.ts';
import { startLocalDynamo } from '../../functions/adapters/local/dynalite.ts';
import type { FsArtifactStore } from '../../functions/adapters/local/fs-artifact-store.ts';
import { FsSourceSecretStore } from '../../functions/adapters/local/fs-source-secret-store.ts';
import { createApp } from '../../functions/api/app.ts';
import { OPENAPI_PATH } from '../../functions/api/openapi.ts';
import type { GitResolver } from '../../functions/ports/git-resolver.ts';
import { configurationNameProblem } from '../../functions/core/configurations/configuration-rules.ts';
import { IMAGE_NAME_PATTERN } from '../../functions/core/images/schemas.ts';
import { parseTagsParam } from '../../functions/core/sessions/filters.ts';
import { TAGS_PARAM_PATTERN } from '../../functions/core/sessions/query-params.ts';
import { imageNameProblem } from '../../functions/core/sessions/session-rules.ts';
import { CONFIGURATION_NAME_PATTERN } from '../../functions/core/sessions/session-schemas.ts';
import { COMMIT_A, IMG1 } from '../helpers/cfs-fakes.ts';
import { MemoryAutomations } from '../core/automation-fakes.ts';
import { call, startCfsTestApp, type CfsTestApp, type Json } from './cfs-app.ts';

/**
 * Requests generated from the document the app serves, sent to the app: a request the document
 * calls valid must never be refused with a 400. 404 and 409 are fine (the resource may not
 * exist, or be in another state), and so are the refusals EXCEPTIONS lists: rules that span
 * fields or depend on the stored state or the deployment's options, which a schema cannot state.
 */

/** Cases per operation: bounded, so the whole file stays well under a minute on two busy cores. */
const RUNS = Number(process.env.OPENAPI_GENERATED_RUNS ?? 30);
/** Fixed, so a failure repeats; set another to explore. */
const SEED = Number(process.env.OPENAPI_GENERATED_SEED ?? 42);

interface Exception {
  /** `method path` as the document spells it; a RegExp matches several. */
  operation: RegExp;
  /** The refusal's detail. */
  detail: RegExp;
  why: string;
}

const SESSION_CREATE = /^post \/apis\/cfs\/v[23]\/sessions(\/plan)?$/;
const CONFIGURATION_PUT = /^put \/apis\/cfs\/v[23]\/configurations\/\{configuration_id\}$/;
const AUTOMATION_PUT = /^put \/apis\/cfs\/v3\/automations\/\{automation_name\}$/;
const IMAGE_PATCH = /^patch \/apis\/ims(\/v3)?\/images\/\{image_id\}$/;

/** 400s a request valid by the document may still get, one line each on why a schema cannot state the rule. */
const EXCEPTIONS: Exception[] = [
  { operation: SESSION_CREATE, detail: /is used twice|is given twice|is mapped twice/, why: 'result names, group names and mapped sources each used once: a rule across array items' },
  { operation: SESSION_CREATE, detail: /tag names must be non-empty/, why: "tag names without '=' or ',': OpenAPI 3.0 has no propertyNames to state it" },
  { operation: /^(post \/apis\/cfs\/v[23]\/sessions(\/plan)?|put \/apis\/cfs\/v3\/automations\/\{automation_name\})$/, detail: /^(ansiblePassthrough|ansible_passthrough):/, why: 'ansible_passthrough is parsed as ansible-playbook arguments (shlex, then the options allowed): not a pattern' },
  { operation: /^(post \/apis\/cfs\/v[23]\/sessions(\/plan)?|put \/apis\/cfs\/v3\/automations\/\{automation_name\})$/, detail: /repeats the check name|is not a valid regular expression/, why: 'check names used once (across items) and success_pattern a regular expression the runner compiles: not JSON Schema' },
  { operation: CONFIGURATION_PUT, detail: /conflicts with layers\[/, why: 'two layers running the same playbook of the same repository: a rule across array items' },
  { operation: AUTOMATION_PUT, detail: /^(source\.name_pattern|result_name_template|schedule\.(expression|timezone)|schedule):/, why: 'a glob, a name template, a cron or rate expression and a time zone: each parsed by its own grammar, not a pattern' },
  { operation: AUTOMATION_PUT, detail: /^groups(\[\d+\])?:.*(twice|once)/, why: 'each group named once: a rule across array items' },
  { operation: /^delete \/apis\/cfs\/v[23]\/configurations\/\{configuration_id\}$/, detail: /is used by/, why: 'a configuration that pending or running sessions or automations use is kept: it depends on the stored records' },
  { operation: IMAGE_PATCH, detail: /a set operation needs a value/, why: "a metadata `set` needs a `value`, a `remove` does not: a rule across fields" },
  { operation: /^put \/apis\/ims\/v3\/images\/\{image_id\}\/manifest$/, detail: /must not name an artifact twice/, why: 'each artifact named once: a rule across array items' },
  { operation: /^put \/apis\/ims\/v3\/images\/\{image_id\}\/manifest$/, detail: /was not uploaded|differs|does not match/, why: 'registration checks what was uploaded to the store before it: stored state' },
  { operation: /^get \/apis\/ims(\/v3)?\/images$/, detail: /^name_glob: is not a usable glob: (?!the pattern is empty)/, why: 'a shell glob is parsed by its own grammar (brackets closed, ...), not a pattern' },
  { operation: /^get \/apis\/ims(\/v3)?\/images$/, detail: /^after_id: is not a cursor this listing wrote/, why: "after_id is an opaque cursor the listing wrote (its `next`): not something a client makes up" },
  { operation: /^patch \/apis\/cfs-image\/v1\/settings$/, detail: /^clone_url_schemes:.*not supported by this deployment/, why: 'the schemes a deployment can clone are its runtime (the runner image), not the document' },
  { operation: /^patch \/apis\/cfs-image\/v1\/settings$/, detail: /^squashfs_compression_level: must be (from \d+ to \d+|null)/, why: "the compression level's range depends on the compressor chosen: a rule across fields" },
  { operation: /^patch \/apis\/cfs\/v3\/sources\/\{source_id\}$/, detail: /^credentials\.secret_name: is read-only/, why: "an update may name the source's secret only as it is stored (the spec marks it read-only): the stored record" },
  { operation: /^get \/apis\/cfs\/v2\/(sessions|configurations)$/, detail: /^The response size is too large/, why: 'v2 listings refuse more matches than default_page_size, as CFS does: a count of stored records' },
  { operation: /^get \/apis\/cfs\/v3\/sessions\/\{session_name\}\/logs$/, detail: /^(layer|test|cursor): (must be a whole number from|names no|give either|points at|the session has no (layers|test logs))/, why: "which layers, test logs and cursor positions exist depends on the session; `layer` and `test` exclude each other" },
];

/** The configuration the session and automation requests name (stored before the requests are sent). */
const CONFIGURATION = 'generated';

/**
 * Rules that depend on stored records or the deployment, satisfied before a request is sent so
 * that what follows them is tested too; one line each on why.
 */
const ADJUSTMENTS: Array<{ operation: RegExp; why: string; adjust: (request: GeneratedRequest) => void }> = [
  {
    operation: SESSION_CREATE,
    why: "the configuration must exist (else 404) and configuration_limit name its layers; image-map sources are members of a group, each mapped once; passthrough is argv; tag names have no '=' or ','",
    adjust: ({ body }) => {
      const v2 = 'configurationName' in body;
      body[v2 ? 'configurationName' : 'configuration_name'] = CONFIGURATION;
      delete body[v2 ? 'configurationLimit' : 'configuration_limit'];
      delete body[v2 ? 'ansiblePassthrough' : 'ansible_passthrough'];
      // Tag names without '=' or ',': OpenAPI 3.0 has no propertyNames to state it.
      if (body.tags) body.tags = Object.fromEntries(Object.entries(body.tags as Record<string, string>).filter(([key]) => key !== '' && !/[=,]/.test(key)));
      const members: string[] = [...new Set<string>((body.target?.groups ?? []).flatMap((g: Json) => g.members ?? []))];
      if (body.target?.image_map) {
        body.target.image_map = (body.target.image_map as Json[]).slice(0, members.length);
        body.target.image_map.forEach((entry: Json, i: number) => (entry.source_id = members[i]));
      }
    },
  },
  {
    operation: CONFIGURATION_PUT,
    why: "a layer takes a clone URL or a source (which must exist) and a commit or a branch; the clone URL's scheme must be one the deployment allows",
    adjust: ({ body }) => {
      const v2 = (body.layers ?? []).some((l: Json) => 'cloneUrl' in l) || body.lastUpdated !== undefined;
      for (const layer of [...(body.layers ?? []), ...(body.additional_inventory ? [body.additional_inventory] : [])]) {
        delete layer.source;
        layer[v2 || 'cloneUrl' in layer ? 'cloneUrl' : 'clone_url'] = 'https://git.example/generated.git';
        if (layer.commit !== undefined) delete layer.branch;
        else layer.branch ??= 'main';
      }
    },
  },
  {
    operation: AUTOMATION_PUT,
    why: 'the configuration must exist; the schedule, glob, name template and passthrough have grammars of their own',
    adjust: ({ body }) => {
      body.configuration_name = CONFIGURATION;
      delete body.configuration_limit;
      delete body.ansible_passthrough;
      delete body.result_name_template;
      body.source.name_pattern = body.source.name_pattern.replaceAll('/', '');
      if (body.schedule) body.schedule = { expression: 'rate(1 day)' };
    },
  },
  {
    operation: /^get \/apis\/cfs\/v3\/sessions\/\{session_name\}\/logs$/,
    why: '`layer` and `test` exclude each other; the known session has two layers and no test logs',
    adjust: ({ query }) => {
      delete query.test;
      if (query.layer) query.layer = String(Number(query.layer) % 2);
    },
  },
  {
    operation: /^get \/apis\/ims(\/v3)?\/images$/,
    why: "after_id is an opaque cursor the listing wrote (its `next`), not something a client makes up",
    adjust: ({ query }) => {
      delete query.after_id;
    },
  },
  {
    operation: /^patch \/apis\/cfs-image\/v1\/settings$/,
    why: "the clone URL schemes a deployment supports are its runtime's; the compression level's range depends on the compressor",
    adjust: ({ body }) => {
      delete body.clone_url_schemes;
      delete body.squashfs_compression_level;
    },
  },
  {
    operation: /^put \/apis\/ims\/v3\/images\/\{image_id\}\/manifest$/,
    why: 'each artifact is named once',
    adjust: ({ body }) => {
      body.artifacts = [...new Map((body.artifacts as Json[]).map((a) => [a.name, a])).values()];
    },
  },
];

/** Anything a JSON schema may be, as the document writes it. */
type Schema = Json;

/** Characters a client may well send, beyond printable ASCII: the hidden rules (control characters, '/', '..') show up with them. */
const SPECIAL = ['/', '.', '..', ' ', '\t', '\n', '\u0000', '\u007f', '%', ';', '=', ',', '@', '-', 'é', '😀'];
const text = (minLength = 0, maxLength = 24) =>
  fc.string({ unit: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)) }, { weight: 1, arbitrary: fc.constantFrom(...SPECIAL) }), minLength, maxLength: Math.max(minLength, maxLength) });

/** Cached per pattern: stringMatching for the regex subset fast-check knows, else any text that matches. */
function patternString(pattern: string, minLength: number, maxLength: number): fc.Arbitrary<string> {
  const regex = new RegExp(pattern, 'u');
  const fits = (s: string) => s.length >= minLength && s.length <= maxLength && regex.test(s);
  let base: fc.Arbitrary<string>;
  try {
    base = fc.stringMatching(regex, { size: 'small' });
  } catch {
    base = text(minLength, Math.min(maxLength, 40));
  }
  return base.filter(fits);
}

function compiles(pattern: string): boolean {
  try {
    new RegExp(pattern);
    return true;
  } catch {
    return false;
  }
}

function stringArbitrary(schema: Schema): fc.Arbitrary<string> {
  if (schema.enum) return fc.constantFrom(...(schema.enum as string[]));
  const minLength = schema.minLength ?? 0;
  if (schema.pattern) return patternString(schema.pattern, minLength, schema.maxLength ?? Number.MAX_SAFE_INTEGER);
  if (schema.format === 'regex') return text(minLength, schema.maxLength ?? 24).filter((s) => s.length >= Math.max(minLength, 1) && compiles(s));
  const maxLength = schema.maxLength ?? Math.max(minLength, 24);
  switch (schema.format) {
    case 'uuid':
      return fc.uuid();
    case 'date-time':
      return fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-12-31T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString());
    case 'uri':
      return fc.webUrl();
    default:
      return text(minLength, maxLength);
  }
}

function numberArbitrary(schema: Schema): fc.Arbitrary<number> {
  const integer = schema.type === 'integer';
  let min = schema.minimum ?? (integer ? -1_000_000 : -1e9);
  let max = schema.maximum ?? (integer ? 1_000_000 : 1e9);
  if (schema.exclusiveMinimum === true) min += integer ? 1 : Number.EPSILON;
  else if (typeof schema.exclusiveMinimum === 'number') min = schema.exclusiveMinimum + (integer ? 1 : Number.EPSILON);
  if (schema.exclusiveMaximum === true) max -= integer ? 1 : Number.EPSILON;
  else if (typeof schema.exclusiveMaximum === 'number') max = schema.exclusiveMaximum - (integer ? 1 : Number.EPSILON);
  if (integer) return fc.integer({ min: Math.ceil(min), max: Math.floor(max) });
  return fc.double({ min, max, noNaN: true, noDefaultInfinity: true });
}

/**
 * An arbitrary of the values `schema` calls valid, for the JSON Schema subset the document uses:
 * $ref, objects (required, additionalProperties), strings (enum, pattern, format, lengths),
 * integers and numbers with bounds, booleans, arrays (items, lengths), oneOf/anyOf/allOf of
 * objects, nullable.
 */
function arbitraryOf(schema: Schema, components: Record<string, Schema>, depth = 0): fc.Arbitrary<unknown> {
  if (schema.$ref) return arbitraryOf(components[String(schema.$ref).split('/').pop()!], components, depth);
  const inner = arbitraryOfNonNull(schema, components, depth);
  return schema.nullable ? fc.oneof(inner, fc.constant(null)) : inner;
}

function arbitraryOfNonNull(schema: Schema, components: Record<string, Schema>, depth: number): fc.Arbitrary<unknown> {
  const alternatives = schema.oneOf ?? schema.anyOf;
  if (alternatives) return fc.oneof(...(alternatives as Schema[]).map((s) => arbitraryOf(s, components, depth)));
  if (schema.allOf) {
    const merged = (schema.allOf as Schema[]).map((s) => (s.$ref ? components[String(s.$ref).split('/').pop()!] : s));
    return arbitraryOf(Object.assign({}, ...merged), components, depth);
  }
  if (schema.enum) return fc.constantFrom(...(schema.enum as unknown[]));
  switch (schema.type) {
    case 'string':
      return stringArbitrary(schema);
    case 'integer':
    case 'number':
      return numberArbitrary(schema);
    case 'boolean':
      return fc.boolean();
    case 'array': {
      const maxLength = Math.min(schema.maxItems ?? 3, depth > 2 ? Math.max(schema.minItems ?? 0, 1) : 3);
      const items = fc.array(arbitraryOf(schema.items ?? {}, components, depth + 1), { minLength: schema.minItems ?? 0, maxLength: Math.max(maxLength, schema.minItems ?? 0) });
      return schema.uniqueItems ? items.filter((list) => new Set(list.map((v) => JSON.stringify(v))).size === list.length) : items;
    }
    case 'object':
    case undefined:
      if (schema.type === undefined && !schema.properties && schema.additionalProperties === undefined) return fc.jsonValue({ maxDepth: 2 });
      return objectArbitrary(schema, components, depth);
    default:
      throw new Error(`the generator does not know JSON schema type ${String(schema.type)}`);
  }
}

function objectArbitrary(schema: Schema, components: Record<string, Schema>, depth: number): fc.Arbitrary<unknown> {
  const properties = (schema.properties ?? {}) as Record<string, Schema>;
  const required = new Set<string>(schema.required ?? []);
  const record: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [name, property] of Object.entries(properties)) record[name] = arbitraryOf(property, components, depth + 1);
  const fixed = fc
    .record(record, { requiredKeys: [...required].filter((name) => name in record) })
    .filter((value) => Object.keys(value).length >= (schema.minProperties ?? 0));
  const extra = schema.additionalProperties;
  if (!extra || Object.keys(properties).length) return fixed;
  // A map (`additionalProperties: {schema}` or `true`): a few keys of any text.
  const values = extra === true ? fc.jsonValue({ maxDepth: 1 }) : arbitraryOf(extra, components, depth + 1);
  const keys = schema.propertyNames ? arbitraryOf({ type: 'string', ...schema.propertyNames }, components, depth + 1) : text(0, 12);
  return fc.dictionary(keys as fc.Arbitrary<string>, values, { maxKeys: 3, noNullPrototype: true });
}

interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema: Schema;
}

interface GeneratedRequest {
  /** The path, parameters filled in and encoded. */
  path: string;
  query: Record<string, string>;
  body?: Json;
}

const urlOf = (request: GeneratedRequest) => {
  const search = new URLSearchParams(request.query);
  return search.size ? `${request.path}?${search}` : request.path;
};

/** Path values of records the test keeps stored, so that requests reach the rules behind the 404 too. */
const KNOWN: Record<string, string> = { session_name: 'generated-session', configuration_id: CONFIGURATION, automation_name: 'generated', image_id: IMG1 };

/** An operation's requests: path parameters, a subset of the query parameters, and the body (when it has one). */
function requestArbitrary(path: string, operation: Json, components: Record<string, Schema>): fc.Arbitrary<GeneratedRequest> {
  const parameters = (operation.parameters ?? []) as Parameter[];
  const pathValues: Record<string, fc.Arbitrary<unknown>> = {};
  const queryValues: Record<string, fc.Arbitrary<unknown>> = {};
  for (const p of parameters) {
    // A path segment is never empty: an empty one names another route.
    if (p.in === 'path') {
      const generated = arbitraryOf({ minLength: 1, ...p.schema }, components);
      const known = KNOWN[p.name];
      pathValues[p.name] = known ? fc.oneof({ weight: 2, arbitrary: fc.constant(known) }, { weight: 1, arbitrary: generated }) : generated;
    }
    if (p.in === 'query') queryValues[p.name] = arbitraryOf(p.schema, components);
  }
  const required = parameters.filter((p) => p.in === 'query' && p.required).map((p) => p.name);
  const bodySchema = operation.requestBody?.content?.['application/json']?.schema;
  const body = bodySchema
    ? operation.requestBody.required
      ? arbitraryOf(bodySchema, components)
      : fc.option(arbitraryOf(bodySchema, components), { nil: undefined })
    : fc.constant(undefined);
  return fc.tuple(fc.record(pathValues), fc.record(queryValues, { requiredKeys: required }), body).map(([pathParams, query, sent]) => {
    const filled = path.replace(/\{(\w+)\}/g, (_m, name: string) => {
      const value = String(pathParams[name]);
      // `{key}` of the artifact endpoint may hold '/': each segment is encoded, not the separators.
      return name === 'key' ? value.split('/').map(encodeURIComponent).join('/') : encodeURIComponent(value);
    });
    return { path: filled, query: Object.fromEntries(Object.entries(query).map(([name, value]) => [name, String(value)])), body: sent };
  });
}

/** Resolves every branch to the same commit: what a repository answers is not what this test is about. */
const anyBranch: GitResolver = { resolveBranch: async () => COMMIT_A };

/** Stores (again, after a generated DELETE) the records KNOWN names: a two-layer configuration, an image, a session and an automation of them. */
async function storeKnownRecords(t: CfsTestApp, app: CfsTestApp['app']): Promise<void> {
  const layer = (name: string) => ({ name, clone_url: 'https://git.example/base.git', playbook: `${name}.yml`, commit: COMMIT_A });
  await t.ports.configurations.put({ name: CONFIGURATION, last_updated: '2026-11-26T09:00:00Z', layers: [layer('base'), layer('extra')] });
  if (!(await t.ports.images.get(IMG1))) await t.ports.images.create({ id: IMG1, name: 'generated-source', created: '2026-11-26T09:00:00Z', arch: 'x86_64', metadata: {} });
  if (!(await t.ports.sessions.get(KNOWN.session_name!))) {
    const session = { name: KNOWN.session_name, configuration_name: CONFIGURATION, target: { definition: 'image', groups: [{ name: 'Compute', members: [IMG1] }] } };
    expect((await call(app, 'POST', '/apis/cfs/v3/sessions', session)).status).toBe(201);
  }
  const automation = { configuration_name: CONFIGURATION, source: { name_pattern: 'generated-*' }, groups: ['Compute'] };
  expect((await call(app, 'PUT', `/apis/cfs/v3/automations/${KNOWN.automation_name}`, automation)).status).toBe(200);
}

describe("the document's patterns and the rules they state", () => {
  const anyText = fc.oneof(text(0, 70), fc.string({ unit: 'binary', maxLength: 70 }));

  it('agree on every configuration name, image name and tags filter', () => {
    // Assert
    fc.assert(
      fc.property(anyText, (value) => {
        expect(CONFIGURATION_NAME_PATTERN.test(value) && value.length <= 60, value).toBe(configurationNameProblem(value) === undefined);
        expect(IMAGE_NAME_PATTERN.test(value) && value.length <= 255, value).toBe(imageNameProblem(value) === undefined);
        expect(TAGS_PARAM_PATTERN.test(value), value).toBe(parses(() => parseTagsParam(value)));
      }),
      { numRuns: 2000 },
    );
  });
});

const parses = (work: () => unknown) => {
  try {
    work();
    return true;
  } catch {
    return false;
  }
};

describe('requests generated from the OpenAPI document', () => {
  let t: CfsTestApp;
  let app: CfsTestApp['app'];
  let document: Json;
  let sourcesDynamo: Awaited<ReturnType<typeof startLocalDynamo>>;
  let secretsDir: string;
  beforeAll(async () => {
    t = await startCfsTestApp({ configuration: CONFIGURATION });
    // Signed URLs need the endpoint's address, which a listening server gives the store; none listens here.
    (t.ports.artifacts as FsArtifactStore).setBaseUrl('http://127.0.0.1:1');
    // The CFS sources too: their store on a dynalite of its own, their logins in owner-only files.
    sourcesDynamo = await startLocalDynamo({ tableName: 'cfs-generated-sources' });
    secretsDir = mkdtempSync(join(tmpdir(), 'cfs-generated-secrets-'));
    const sources = new DynamoDbSourceStore(sourcesDynamo.documents, 'cfs-generated-sources');
    app = createApp({ ...t.ports, git: anyBranch, automations: new MemoryAutomations(), sources, sourceSecrets: new FsSourceSecretStore(join(secretsDir, 'source-secrets')) });
    document = (await call(app, 'GET', OPENAPI_PATH)).body;
  });
  afterAll(async () => {
    await t.close();
    await sourcesDynamo.close();
    rmSync(secretsDir, { recursive: true, force: true });
  });

  it('lists each exception with why a schema cannot state it', () => {
    // Assert
    for (const exception of [...EXCEPTIONS, ...ADJUSTMENTS]) expect(exception.why.length, String(exception.operation)).toBeGreaterThan(20);
  });

  it('are never refused with a 400 (or answered with a 500) unless an exception says why', { timeout: 120_000 }, async () => {
    // Arrange
    const components = document.components.schemas as Record<string, Schema>;
    const refused: string[] = [];
    let operationIndex = 0;
    // Act
    for (const [path, operations] of Object.entries(document.paths as Record<string, Record<string, Json>>)) {
      for (const [method, operation] of Object.entries(operations)) {
        const name = `${method} ${path}`;
        // A seed per operation: with one seed, v2's create would draw v3's session names and only meet 409s.
        const requests = fc.sample(requestArbitrary(path, operation, components), { numRuns: RUNS, seed: SEED + operationIndex++ });
        await storeKnownRecords(t, app);
        for (const request of requests) {
          for (const adjustment of ADJUSTMENTS) if (adjustment.operation.test(name)) adjustment.adjust(request);
          const res = await call(app, method.toUpperCase(), urlOf(request), request.body);
          if (res.status !== 400 && res.status < 500) continue;
          const detail = String(res.body?.detail ?? res.text);
          if (res.status === 400 && EXCEPTIONS.some((e) => e.operation.test(name) && e.detail.test(detail))) continue;
          refused.push(`${name}: ${res.status} ${detail}\n  ${method.toUpperCase()} ${urlOf(request)} ${JSON.stringify(request.body) ?? ''}`);
          break;
        }
      }
    }
    // Assert
    expect(refused, 'requests valid by the document that the app refused (first per operation)').toEqual([]);
  });
});
