import { ConflictError, InvalidStateError, NotFoundError, ValidationError } from '../errors.ts';
import type { ConfigurationRecord } from '../model/configuration.ts';
import type { AppPorts } from '../../ports/index.ts';
import type { SourceSecretStore, SourceStore } from '../../ports/source-store.ts';
import { hasCloneUrlPolicy } from '../configurations/clone-url.ts';
import { currentOptions } from '../options/options-use-cases.ts';
import { rfc3339 } from '../sessions/rfc3339.ts';
import { parseQueryParams } from '../sessions/query-params.ts';
import { fieldError, parseOrThrow } from '../sessions/validation.ts';
import type { GitAccess, SourceRecord } from './source-record.ts';
import { NOT_IN_A_SOURCE_NAME, sourceCreateSchema, sourceListParamsSchema, sourceRestoreSchema, sourceUpdateSchema } from './source-schemas.ts';

/** What the source use cases touch; the stores are optional in AppPorts, so a root without them answers 501 at the route. */
export interface SourcePorts extends Pick<AppPorts, 'configurations' | 'git' | 'clock' | 'options'> {
  sources: SourceStore;
  sourceSecrets: SourceSecretStore;
}

/** The secret store's name for a new source's credentials: fresh for each create, never derived from the source's name. */
function newSecretName(): string {
  return `cfs-source-${crypto.randomUUID()}`;
}

/** The name rule of sourceNameSchema, for a name from the path or one taken from the clone URL. */
function checkName(name: string): void {
  if (name.length < 1 || name.length > 1024) throw fieldError('name', 'a source name must be 1 to 1024 characters');
  if (NOT_IN_A_SOURCE_NAME.test(name)) throw fieldError('name', 'a source name must not contain control characters, line breaks or invisible format characters');
}

/** The clone URL must be one git may use here, and carry no login: that is what the credentials are for. */
function checkCloneUrl(ports: Pick<AppPorts, 'git'>, url: string): void {
  if (hasCloneUrlPolicy(ports.git)) {
    try {
      ports.git.assertAllowedCloneUrl(url);
    } catch (error) {
      if (error instanceof ValidationError) throw fieldError('clone_url', error.message);
      throw error;
    }
  }
  if (!/^https?:\/\//i.test(url)) {
    throw fieldError('clone_url', 'must be an http(s) URL: a source logs in with a username and password, which git sends over HTTP(S) only');
  }
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]*@/.test(url)) {
    throw fieldError('clone_url', 'must not hold a user name or password; give them as credentials, which are kept in the secret store');
  }
}

function certOf(cert: { configmap_name: string; configmap_namespace?: string | undefined; pem?: string | undefined }): NonNullable<SourceRecord['ca_cert']> {
  return {
    configmap_name: cert.configmap_name,
    ...(cert.configmap_namespace !== undefined ? { configmap_namespace: cert.configmap_namespace } : {}),
    ...(cert.pem !== undefined ? { pem: cert.pem } : {}),
  };
}

/**
 * The V3SourceData answer: the record without the CA bundle's text (the spec's V3SourceCert is
 * closed) and, as in every answer, without credentials: only their `secret_name` is shown.
 */
export function sourceToV3(record: SourceRecord): Record<string, unknown> {
  return {
    name: record.name,
    ...(record.description !== undefined ? { description: record.description } : {}),
    last_updated: record.last_updated,
    clone_url: record.clone_url,
    credentials: { authentication_method: record.credentials.authentication_method, secret_name: record.credentials.secret_name },
    ...(record.ca_cert
      ? { ca_cert: { configmap_name: record.ca_cert.configmap_name, ...(record.ca_cert.configmap_namespace !== undefined ? { configmap_namespace: record.ca_cert.configmap_namespace } : {}) } }
      : {}),
  };
}

/**
 * `POST /v3/sources`: writes the credentials to the secret store under a fresh name, then the
 * record (conditional create). A duplicate name is a ConflictError (409) before any secret is
 * written; a create that loses a race removes the secret it wrote.
 */
export async function createSource(ports: SourcePorts, body: unknown): Promise<SourceRecord> {
  const request = parseOrThrow(sourceCreateSchema, body);
  const name = request.name ?? request.clone_url;
  checkName(name);
  checkCloneUrl(ports, request.clone_url);
  if (await ports.sources.get(name)) throw new ConflictError(`source '${name}' already exists`);
  const secretName = newSecretName();
  const record: SourceRecord = {
    name,
    ...(request.description !== undefined ? { description: request.description } : {}),
    last_updated: rfc3339(ports.clock.now()),
    clone_url: request.clone_url,
    credentials: { authentication_method: 'password', secret_name: secretName },
    ...(request.ca_cert ? { ca_cert: certOf(request.ca_cert) } : {}),
  };
  await ports.sourceSecrets.put(secretName, { username: request.credentials.username, password: request.credentials.password });
  try {
    await ports.sources.create(record);
  } catch (error) {
    await ports.sourceSecrets.delete(secretName).catch(() => {});
    throw error;
  }
  return record;
}

/**
 * `POST /v3/sources/{name}` (restore): a record pointing at an existing secret, as CFS does
 * when its data was lost. The secret is neither created nor checked, as the spec says; its
 * name must be one this deployment's store can hold.
 */
export async function restoreSource(ports: SourcePorts, name: string, body: unknown): Promise<SourceRecord> {
  checkName(name);
  const request = parseOrThrow(sourceRestoreSchema, body);
  checkCloneUrl(ports, request.clone_url);
  const problem = ports.sourceSecrets.nameProblem(request.credentials.secret_name);
  if (problem) throw fieldError('credentials.secret_name', problem);
  const record: SourceRecord = {
    name,
    ...(request.description !== undefined ? { description: request.description } : {}),
    last_updated: rfc3339(ports.clock.now()),
    clone_url: request.clone_url,
    credentials: { authentication_method: 'password', secret_name: request.credentials.secret_name },
    ...(request.ca_cert ? { ca_cert: certOf(request.ca_cert) } : {}),
  };
  await ports.sources.create(record);
  return record;
}

/** One source; NotFoundError (404) when missing. */
export async function getSource(ports: Pick<SourcePorts, 'sources'>, name: string): Promise<SourceRecord> {
  const record = await ports.sources.get(name);
  if (!record) throw new NotFoundError('source', name);
  return record;
}

/**
 * `PATCH /v3/sources/{name}`: description, clone URL, CA bundle (`null` removes it) and the
 * login (username and password each optional: the other is kept). Everything is checked before
 * anything is written.
 */
export async function updateSource(ports: SourcePorts, name: string, body: unknown): Promise<SourceRecord> {
  const current = await getSource(ports, name);
  const request = parseOrThrow(sourceUpdateSchema, body);
  if (request.clone_url !== undefined) checkCloneUrl(ports, request.clone_url);
  const credentials = request.credentials;
  if (credentials?.secret_name !== undefined && credentials.secret_name !== current.credentials.secret_name) {
    throw fieldError('credentials.secret_name', 'is read-only: the service names the secret');
  }
  const record: SourceRecord = {
    ...current,
    ...(request.description !== undefined ? { description: request.description } : {}),
    ...(request.clone_url !== undefined ? { clone_url: request.clone_url } : {}),
    last_updated: rfc3339(ports.clock.now()),
  };
  if (request.ca_cert === null) delete record.ca_cert;
  else if (request.ca_cert) record.ca_cert = certOf(request.ca_cert);
  if (credentials?.username !== undefined || credentials?.password !== undefined) {
    const secretName = current.credentials.secret_name;
    const stored = await ports.sourceSecrets.get(secretName);
    const username = credentials.username ?? stored?.username;
    const password = credentials.password ?? stored?.password;
    if (username === undefined || password === undefined) {
      throw fieldError('credentials', `the secret '${secretName}' is missing: give both username and password`);
    }
    await ports.sourceSecrets.put(secretName, { username, password });
  }
  await ports.sources.put(record);
  return record;
}

/** The configurations whose layers or additional inventory name a source, by source name. */
async function sourceUsers(ports: Pick<AppPorts, 'configurations'>): Promise<Map<string, string[]>> {
  const users = new Map<string, string[]>();
  const note = (source: string | undefined, configuration: ConfigurationRecord) => {
    if (source === undefined) return;
    const names = users.get(source) ?? [];
    if (!names.includes(configuration.name)) names.push(configuration.name);
    users.set(source, names);
  };
  for (const configuration of await ports.configurations.list()) {
    for (const layer of configuration.layers) note(layer.source, configuration);
    note(configuration.additional_inventory?.source, configuration);
  }
  return users;
}

/**
 * `DELETE /v3/sources/{name}`: refused (InvalidStateError, a 409) while a configuration names
 * the source, listing them (CFS deletes it anyway and breaks them: a known issue). Removes the
 * record, then its secret.
 */
export async function deleteSource(ports: SourcePorts, name: string): Promise<void> {
  const record = await getSource(ports, name);
  const users = (await sourceUsers(ports)).get(name) ?? [];
  if (users.length > 0) {
    const shown = users.slice(0, 10).map((n) => `'${n}'`).join(', ') + (users.length > 10 ? ` and ${users.length - 10} more` : '');
    throw new InvalidStateError(`source '${name}' is used by ${users.length === 1 ? 'configuration' : 'configurations'} ${shown}; change or delete them first`);
  }
  if (!(await ports.sources.delete(name))) throw new NotFoundError('source', name);
  await ports.sourceSecrets.delete(record.credentials.secret_name);
}

export interface NextSourcePage {
  limit: number;
  after_id: string;
  in_use?: string;
}

/**
 * `GET /v3/sources`: one page in name order. With `in_use`, pages are read until `limit`
 * matches are found (or the sources end), so `next` continues after the last one examined.
 */
export async function listSourcePage(
  ports: Pick<SourcePorts, 'sources' | 'configurations' | 'options'>,
  query: Record<string, string[]>,
): Promise<{ sources: SourceRecord[]; next: NextSourcePage | null }> {
  const lowered = Object.fromEntries(Object.entries(query).map(([k, v]) => [k, k === 'in_use' ? v.map((s) => s.toLowerCase()) : v]));
  const params = parseQueryParams(sourceListParamsSchema, lowered);
  const limit = params.limit ?? (await currentOptions(ports)).default_page_size;
  const inUse = params.in_use === undefined ? undefined : params.in_use === 'true';
  const users = inUse === undefined ? undefined : await sourceUsers(ports);
  const sources: SourceRecord[] = [];
  let after = params.after_id;
  let exhausted = false;
  while (sources.length < limit && !exhausted) {
    const page = await ports.sources.page(limit, after);
    let consumed = 0;
    for (const source of page.sources) {
      if (sources.length === limit) break;
      consumed += 1;
      after = source.name;
      if (users === undefined || users.has(source.name) === inUse) sources.push(source);
    }
    exhausted = page.next === undefined && consumed === page.sources.length;
  }
  const next = exhausted || after === undefined ? null : { limit, after_id: after, ...(params.in_use !== undefined ? { in_use: params.in_use } : {}) };
  return { sources, next };
}

/**
 * The login and CA bundle that open a source's repository, for branch resolution and for the
 * runner's clone. NotFoundError when the source is gone; a ValidationError when its secret is.
 */
export async function sourceAccess(ports: Pick<SourcePorts, 'sources' | 'sourceSecrets'>, name: string): Promise<{ source: SourceRecord; access: GitAccess }> {
  const source = await getSource(ports, name);
  const secret = await ports.sourceSecrets.get(source.credentials.secret_name);
  if (!secret) throw new ValidationError(`source '${name}': its credentials (secret '${source.credentials.secret_name}') are missing from the secret store`);
  return { source, access: { ...secret, ...(source.ca_cert?.pem !== undefined ? { caPem: source.ca_cert.pem } : {}) } };
}
