import fc from 'fast-check';
import type { Hono } from 'hono';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../functions/api/app.ts';
import { runCli } from '../../functions/cli/main.ts';
import type { CliIo } from '../../functions/cli/io.ts';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { FakeWorkflow } from '../helpers/cfs-fakes.ts';
import { snapshotPaths, snapshotTree, treeChanges } from './fs-snapshot.ts';
import { recordCase } from './results.ts';

// Bad input (issue 11, item 1): generated and malformed requests to every route of the real app
// over the embedded runtime's real stores (dynalite, the artifact store, git), with a workflow
// starter that only records (no runner: the input is what is under test here).

const RUNS = Number(process.env.CFS_RELIABILITY_RUNS ?? 300);
const COMMIT = 'a'.repeat(40);

/** Values a careless or hostile client sends: wrong types, huge, unicode, traversal, injection. */
const hostileString = fc.oneof(
  fc.constantFrom(
    '../../../../etc/passwd',
    '..%2f..%2fetc%2fshadow',
    '/etc/shadow',
    '..\\..\\windows',
    'all;rm -rf /',
    'a b',
    '$(touch /tmp/cfs-pwned)',
    '`id`',
    '-oProxyCommand=touch /tmp/cfs-pwned',
    '--upload-pack=touch /tmp/cfs-pwned',
    'ext::sh -c touch% /tmp/cfs-pwned',
    'file:///etc',
    'http://127.0.0.1:1/../../x',
    'localhost,!cfs_image',
    'all:!none',
    '\u0000',
    '\u202e\u0644\ud83d\ude00',
    'x'.repeat(100_000),
    '',
  ),
  fc.string({ unit: 'grapheme', maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
);
const wrongValue = fc.oneof(
  hostileString,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(hostileString, { maxLength: 3 }),
  fc.dictionary(hostileString, hostileString, { maxKeys: 3 }),
);

function setPath(target: Record<string, unknown>, path: string[], value: unknown): Record<string, unknown> {
  const copy = structuredClone(target);
  let node: Record<string, unknown> = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string, unknown>;
  node[path[path.length - 1]!] = value;
  return copy;
}

interface BodyRoute {
  method: string;
  path: (name: string) => string;
  body: Record<string, unknown>;
  fields: string[][];
}

interface Outcome {
  status: number;
  contentType: string;
  body: { status?: number; detail?: string; field?: string } | undefined;
}

describe('bad input against the real API app', () => {
  let parent: string;
  let dataDir: string;
  let runtime: EmbeddedRuntime;
  let app: Hono;
  let imageId: string;
  const statuses = new Map<number, number>();
  let targetsBefore: Record<string, string>;

  async function send(method: string, path: string, body?: string, contentType = 'application/json'): Promise<Outcome> {
    const init: RequestInit = { method, headers: body === undefined ? {} : { 'content-type': contentType } };
    if (body !== undefined && method !== 'GET' && method !== 'HEAD') init.body = body;
    const response = await app.request(path, init);
    const text = await response.text();
    statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
    let parsed: Outcome['body'];
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: response.status, contentType: response.headers.get('content-type') ?? '', body: parsed };
  }

  /** What the store holds, as a client can see it: compared before and after every rejected write. */
  async function storeDigest(): Promise<string> {
    const p = runtime.ports;
    const [sessions, configurations, images, options, automations] = await Promise.all([
      p.sessions.list(),
      p.configurations.list(),
      p.images.list(),
      p.options.get(),
      p.automations ? p.automations.list() : Promise.resolve([]),
    ]);
    return JSON.stringify({ sessions, configurations, images, options, automations });
  }

  function assertRejection(outcome: Outcome, what: string): void {
    expect(outcome.status, what).toBeLessThan(500);
    if (outcome.status < 400) return;
    expect(outcome.contentType, what).toContain('application/problem+json');
    expect(outcome.body?.status, what).toBe(outcome.status);
    expect(typeof outcome.body?.detail === 'string' && outcome.body.detail.length > 0, what).toBe(true);
  }

  beforeAll(async () => {
    // A marker an earlier run left would hide a payload that ran now.
    rmSync('/tmp/cfs-pwned', { force: true });
    targetsBefore = snapshotPaths();
    parent = mkdtempSync(join(tmpdir(), 'cfs-reliability-'));
    dataDir = join(parent, 'data');
    mkdirSync(join(parent, 'outside'));
    runtime = await startEmbeddedRuntime({ dataDir, port: 0, overrides: { workflow: new FakeWorkflow() } });
    app = createApp(runtime.ports);
    const created = await send('POST', '/apis/ims/v3/images', JSON.stringify({ name: 'seed-image' }));
    imageId = (created.body as { id: string }).id;
    const config = await send('PUT', '/apis/cfs/v3/configurations/seed-config', JSON.stringify({ layers: [{ name: 'l0', clone_url: 'https://git.example/repo.git', commit: COMMIT, playbook: 'site.yml' }] }));
    expect(config.status).toBe(200);
  });
  afterAll(async () => {
    await runtime.close();
    rmSync(parent, { recursive: true, force: true });
  });

  /** The payloads' targets (`/tmp/cfs-pwned`, host files under /etc) as they were before the suite. */
  function expectTargetsUntouched(): void {
    expect(snapshotPaths()).toEqual(targetsBefore);
  }

  /**
   * The field a 400 for a mutated `field` may blame: that field or a field inside it
   * (`layers[0].clone_url`, `target.groups[1].name`); a hostile configuration name in the path
   * is blamed as `name`; a rule spanning a layer's fields blames the layer (`layers[0]`); on a session, a changed group list may leave an image map entry naming
   * an image no longer in any group, which the rule blames on that entry.
   */
  function blamesRightField(blamed: string | undefined, field: string[], route: BodyRoute, pathName: string): boolean {
    if (blamed === undefined) return false;
    const path = field.reduce((out, part) => (/^\d+$/.test(part) ? `${out}[${part}]` : out ? `${out}.${part}` : part), '');
    if (blamed === path || blamed.startsWith(`${path}.`) || blamed.startsWith(`${path}[`)) return true;
    // A hostile name in the path: the name rule blames `name`, the app's guard on over-long path segments `path`.
    if (route.method === 'PUT' && pathName !== 'fuzz-config' && (blamed === 'name' || blamed === 'path')) return true;
    // The layer rules that span a layer's fields (a branch or a commit, not both) blame the layer.
    if (route.method === 'PUT' && path.startsWith('layers[0].') && blamed === 'layers[0]') return true;
    return route.path('').includes('/sessions') && path === 'target.groups' && blamed.startsWith('target.image_map[');
  }

  it('answers every mutated create and update body with a 2xx or a problem+json 4xx naming the field, and a rejection changes nothing', async () => {
    // Arrange
    const session = { name: 'fuzz-session', configuration_name: 'seed-config', ansible_limit: '', ansible_passthrough: '', target: { definition: 'image', groups: [{ name: 'Compute', members: [imageId] }], image_map: [{ source_id: imageId, result_name: 'fuzz-result' }] } };
    const routes: BodyRoute[] = [
      {
        method: 'POST',
        path: () => '/apis/cfs/v3/sessions',
        body: session,
        fields: [['name'], ['configuration_name'], ['ansible_limit'], ['ansible_passthrough'], ['ansible_verbosity'], ['configuration_limit'], ['target'], ['target', 'definition'], ['target', 'groups'], ['target', 'image_map'], ['tags'], ['debug_on_failure']],
      },
      {
        method: 'POST',
        path: () => '/apis/cfs/v2/sessions',
        body: { name: 'fuzz-v2', configurationName: 'seed-config', target: session.target },
        fields: [['name'], ['configurationName'], ['ansibleLimit'], ['ansiblePassthrough'], ['ansibleVerbosity'], ['target', 'groups'], ['target', 'image_map']],
      },
      {
        method: 'PUT',
        path: (name) => `/apis/cfs/v3/configurations/${encodeURIComponent(name)}`,
        body: { layers: [{ name: 'l0', clone_url: 'https://git.example/repo.git', commit: COMMIT, playbook: 'site.yml' }] },
        fields: [['layers'], ['description']],
      },
      { method: 'POST', path: () => '/apis/ims/v3/images', body: { name: 'fuzz-image', arch: 'x86_64' }, fields: [['name'], ['arch'], ['link'], ['metadata']] },
      { method: 'PATCH', path: () => '/apis/cfs/v3/options', body: {}, fields: [['default_playbook'], ['session_ttl'], ['default_page_size'], ['default_ansible_config'], ['debug_wait_time']] },
      { method: 'PATCH', path: () => '/apis/cfs-image/v1/settings', body: {}, fields: [['image_wait_timeout'], ['squashfs_compressor'], ['squashfs_compression_level'], ['clone_url_schemes']] },
    ];
    const layerFields = ['clone_url', 'commit', 'playbook', 'name', 'branch'];
    let baseline = await storeDigest();
    const treeBefore = snapshotTree(parent, [join(dataDir, 'db')]);
    let accepted = 0;

    // Act
    await fc.assert(
      fc.asyncProperty(
        fc.nat(routes.length - 1),
        fc.nat(20),
        wrongValue,
        fc.oneof(fc.constant('fuzz-config'), hostileString),
        fc.boolean(),
        async (routeIndex, fieldIndex, value, name, inLayer) => {
          const route = routes[routeIndex]!;
          // Configurations: half the time the bad value goes into a layer field (clone URL, playbook path, commit).
          const field = route.method === 'PUT' && inLayer ? ['layers', '0', layerFields[fieldIndex % layerFields.length]!] : route.fields[fieldIndex % route.fields.length]!;
          const body = setPath(route.body, field, value);
          const outcome = await send(route.method, route.path(name), JSON.stringify(body));
          const what = `${route.method} ${route.path(name).slice(0, 80)} ${field.join('.')}=${JSON.stringify(value).slice(0, 80)} -> ${outcome.status} ${String(JSON.stringify(outcome.body)).slice(0, 200)}`;
          assertRejection(outcome, what);
          const now = await storeDigest();
          if (outcome.status < 400) {
            accepted += 1;
            baseline = now;
            return;
          }
          if (outcome.status === 400) expect(blamesRightField(outcome.body?.field, field, route, name), what).toBe(true);
          expect(now, what).toBe(baseline);
        },
      ),
      { numRuns: RUNS * 4 },
    );

    // Assert
    // The data directory itself changes when something is made in it (a sources' secret directory, say): that is inside it.
    const outside = treeChanges(treeBefore, snapshotTree(parent, [join(dataDir, 'db')])).filter((p) => p !== 'data' && !p.startsWith('data/'));
    expect(outside).toEqual([]);
    expectTargetsUntouched();
    recordCase({ id: 'input-bodies', area: 'bad input', case: 'mutated bodies on session create (v2, v3), configuration PUT (layers: clone URL, commit, playbook), image create, options and settings PATCH', tried: RUNS * 4, result: `no 5xx; every 400's problem field is the mutated field or one inside it (a hostile path name: name); ${accepted} accepted (valid values), store unchanged by every rejection; nothing written outside the data directory; /tmp/cfs-pwned absent and /etc, /etc/passwd, /etc/shadow, /etc/hosts unchanged`, passed: true });
  });

  it('answers arbitrary methods, paths, ids and raw bodies on every route with no 5xx and problem+json for every error', async () => {
    // Arrange
    const templates = [...new Set(app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path}`))];
    const rawBody = fc.oneof(
      fc.constant(undefined),
      fc.constantFrom('', 'null', '[]', '"x"', '{', '{"a":', '\u0000\u0001', '{"name":{"$gt":""}}', 'x'.repeat(1024 * 1024 + 10)),
      fc.json({ maxDepth: 3 }),
      wrongValue.map((v) => JSON.stringify({ name: v, layers: v, target: v })),
    );
    let baseline = await storeDigest();
    const treeBefore = snapshotTree(parent, [join(dataDir, 'db')]);
    let accepted = 0;

    // Act
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...templates),
        fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', undefined),
        hostileString,
        rawBody,
        fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1'),
        fc.dictionary(fc.constantFrom('limit', 'after', 'status', 'name_contains', 'tags', 'succeeded', 'min_age', 'layer', 'follow'), hostileString, { maxKeys: 3 }),
        async (template, overrideMethod, param, body, contentType, query) => {
          const [routeMethod, routePath] = template.split(' ') as [string, string];
          const method = overrideMethod ?? routeMethod;
          const path = routePath.replace(/:\w+/g, () => encodeURIComponent(param)).replace(/\*$/, param.replace(/[?#]/g, ''));
          const search = new URLSearchParams(query).toString();
          const outcome = await send(method, `${path}${search ? `?${search}` : ''}`, body, contentType);
          const what = `${method} ${path.slice(0, 100)}?${search.slice(0, 60)} body=${String(body).slice(0, 60)} -> ${outcome.status} ${String(JSON.stringify(outcome.body)).slice(0, 200)}`;
          expect(outcome.status, what).toBeLessThan(500);
          if (outcome.status >= 400 && method !== 'HEAD') assertRejection(outcome, what);
          const now = await storeDigest();
          if (outcome.status < 400) {
            accepted += 1;
            baseline = now;
          } else {
            expect(now, what).toBe(baseline);
          }
        },
      ),
      { numRuns: RUNS * 4 },
    );

    // Assert
    const outside = treeChanges(treeBefore, snapshotTree(parent, [join(dataDir, 'db')])).filter((p) => p !== 'data' && !p.startsWith('data/'));
    expect(outside).toEqual([]);
    expectTargetsUntouched();
    recordCase({ id: 'input-routes', area: 'bad input', case: `every route (${templates.length}) with arbitrary methods, traversal/unicode/injection in path ids, query params and raw bodies (malformed JSON, >1 MiB, wrong content types)`, tried: RUNS * 4, result: `no 5xx; every error problem+json; ${accepted} accepted; store unchanged by every rejection; nothing written outside the data directory; /tmp/cfs-pwned absent and /etc, /etc/passwd, /etc/shadow, /etc/hosts unchanged`, passed: true });
  });

  it('refuses bad CLI options with one error line and a non-zero exit, changing nothing', async () => {
    // Arrange
    const commands: Array<(v: string) => string[]> = [
      (v) => ['sessions', 'create', '--name', v, '--configuration-name', 'seed-config', '--target-definition', 'image', '--target-group', 'Compute', imageId],
      (v) => ['sessions', 'create', '--name', 'cli-fuzz', '--configuration-name', 'seed-config', '--target-definition', v, '--target-group', 'Compute', imageId],
      (v) => ['sessions', 'create', '--name', 'cli-fuzz', '--configuration-name', 'seed-config', '--target-definition', 'image', '--target-group', v, v],
      (v) => ['sessions', 'create', '--name', 'cli-fuzz', '--configuration-name', 'seed-config', '--target-definition', 'image', '--target-group', 'Compute', imageId, '--ansible-limit', `${v} ;x`],
      (v) => ['sessions', 'create', '--name', 'cli-fuzz', '--configuration-name', 'seed-config', '--target-definition', 'image', '--target-group', 'Compute', imageId, '--image-map', imageId, v, '--ansible-verbosity', v],
      (v) => ['sessions', 'describe', v],
      (v) => ['sessions', 'list', '--limit', `${v}x`],
      (v) => ['configurations', 'describe', v],
      (v) => ['configurations', 'update', 'cli-fuzz', '--file', join(parent, 'outside', `${v.replace(/\//g, '_')}.json`)],
      (v) => ['images', 'describe', v],
      (v) => ['sessions', 'list', '--format', v],
      (v) => ['server', '--port', `${v}x`, '--data-dir', join(parent, 'never')],
      (v) => ['server', '--port', '0', '--runner-timeout', v, '--data-dir', join(parent, 'never')],
      (v) => ['server', '--port', '0', '--max-concurrent-runs', `${v}x`, '--data-dir', join(parent, 'never')],
    ];
    const baseline = await storeDigest();
    const treeBefore = snapshotTree(parent, [join(dataDir, 'db')]);
    // The route cases above may have stored a configuration under a hostile name (names are free-form); describing it is no error.
    const configurationNames = new Set((await runtime.ports.configurations.list()).map((c) => c.name));
    let runs = 0;

    // Act
    await fc.assert(
      fc.asyncProperty(fc.nat(commands.length - 1), hostileString.filter((v) => /[^a-z0-9.-]/.test(v) && v.length < 1000 && !v.includes('\u0000') && !configurationNames.has(v)), async (index, value) => {
        runs += 1;
        let out = '';
        let err = '';
        const io: CliIo = { out: (t) => void (out += `${t}\n`), err: (t) => void (err += `${t}\n`), env: { CFS_API_URL: runtime.url, CFS_API_TOKEN: runtime.apiToken } };
        const argv = commands[index]!(value);
        const code = await runCli(argv, io);
        const what = `cfs ${argv.join(' ').slice(0, 200)} -> ${code} ${err.slice(0, 200)}`;
        // Assert (per run)
        expect(code, what).not.toBe(0);
        expect(err.trim().split('\n').filter(Boolean), what).toHaveLength(1);
        expect(err, what).toMatch(/^(Error|error)/);
        expect(out, what).toBe('');
      }),
      { numRuns: RUNS },
    );

    // Assert
    expect(await storeDigest()).toBe(baseline);
    const changes = treeChanges(treeBefore, snapshotTree(parent, [join(dataDir, 'db')])).filter((p) => !p.startsWith('data/'));
    expect(changes).toEqual([]);
    expectTargetsUntouched();
    recordCase({ id: 'input-cli', area: 'bad input', case: 'CLI options: session names, target definitions and groups, limits, image maps, verbosity, formats, ports, run limits, file paths, ids with traversal/unicode/injection', tried: runs, result: 'every run: exit non-zero, one error line, nothing printed on stdout, store and files unchanged; /tmp/cfs-pwned absent and /etc, /etc/passwd, /etc/shadow, /etc/hosts unchanged', passed: true });
  });

  it('gives exactly one 201 and 49 409s for 50 concurrent creates of the same session name', async () => {
    // Arrange
    const body = JSON.stringify({ name: 'race', configuration_name: 'seed-config', target: { definition: 'image', groups: [{ name: 'Compute', members: [imageId] }] } });
    const started = performance.now();

    // Act
    const outcomes = await Promise.all(Array.from({ length: 50 }, () => fetch(`${runtime.url}/apis/cfs/v3/sessions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${runtime.apiToken}` }, body })));
    const ms = performance.now() - started;
    const codes = outcomes.map((r) => r.status);

    // Assert
    expect(codes.filter((c) => c === 201)).toHaveLength(1);
    expect(codes.filter((c) => c === 409)).toHaveLength(49);
    recordCase({ id: 'load-same-name', area: 'load', case: '50 concurrent creates of the same session name over HTTP', tried: 50, result: `1 x 201, 49 x 409 in ${ms.toFixed(0)} ms`, passed: true });
  });
});
