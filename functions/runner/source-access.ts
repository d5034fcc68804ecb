import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { sourceAccessDocumentSchema, type SourceAccessDocument } from '../core/sources/source-access-document.ts';
import type { SourceSecret } from '../core/sources/source-record.ts';
import type { RunDocument } from '../core/workflow/run-document.ts';
import { runnerKeys, runnerPrefixOf } from '../core/workflow/session-keys.ts';
import type { ArtifactStore } from '../ports/artifact-store.ts';

/** The credentials of the access object, as an SDK client takes them. */
export interface AccessCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
}

export interface AwsSourceSecretsOptions {
  store: ArtifactStore;
  /** The runner's run document key, `runner/<token>/run-document.json`: the access object lies beside it. */
  documentKey: string;
  document: RunDocument;
  /** The stack's sources' secret name prefix (`cfs/<stack>/sources/`), from RUNNER_SOURCE_SECRET_PREFIX. */
  secretPrefix: string | undefined;
  now?: () => Date;
  log?: (line: string) => void;
  /** A Secrets Manager client signing with these credentials (tests give a mocked one). */
  secretsClient?: (credentials: AccessCredentials) => Promise<SecretsManagerClient>;
}

/** A source's login by secret name; a secret that could not be read throws the reason. */
export type SourceSecretLookup = (secretName: string) => Promise<SourceSecret | undefined>;

async function defaultSecretsClient(credentials: AccessCredentials): Promise<SecretsManagerClient> {
  const { SecretsManagerClient } = await import('@aws-sdk/client-secrets-manager');
  return new SecretsManagerClient({ credentials });
}

async function readText(store: ArtifactStore, key: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of await store.get(key)) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads the access object RenderInventory left beside the run document and deletes it, so it is read once. */
async function takeAccess(options: AwsSourceSecretsOptions): Promise<SourceAccessDocument> {
  const prefix = runnerPrefixOf(options.documentKey);
  if (!prefix) throw new Error(`the run document ${options.documentKey} is not under a runner prefix, so no source access lies beside it`);
  const key = runnerKeys(prefix.slice('runner/'.length, -1)).sourceAccess;
  let text: string;
  try {
    text = await readText(options.store, key);
  } catch (error) {
    throw new Error(`cannot read ${key}, which RenderInventory writes for a session whose layers name sources: ${(error as Error).message}`, { cause: error });
  }
  // Gone from the bucket before any layer runs; what the versioned bucket keeps expires within the hour.
  await options.store.delete(key).catch((error: unknown) => options.log?.(`could not delete ${key}: ${(error as Error).message}`));
  const parsed = sourceAccessDocumentSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${key} is not a source access document: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

/** The login in a secret's text; a parse error's message (which may quote the text) never leaves here. */
function loginOf(name: string, text: string | undefined): SourceSecret | Error {
  let value: Partial<SourceSecret> | undefined;
  try {
    value = JSON.parse(text ?? '') as Partial<SourceSecret>;
  } catch {
    value = undefined;
  }
  if (typeof value?.username !== 'string' || typeof value.password !== 'string') return new Error(`the secret '${name}' is not a username and password`);
  return { username: value.username, password: value.password };
}

const expiredReason = (expiration: string) =>
  `the session's source access expired at ${expiration} (STS allows at most one hour from RenderInventory, and this runner started later); run the session again`;

/**
 * The runner's sources' logins in AWS: with the short-lived credentials RenderInventory left
 * under this run's prefix (read once, then deleted), each secret the run document names is read
 * from Secrets Manager at start, before any layer runs, and kept in this process's memory only
 * (never an environment variable or a file a layer sees). The credentials read those secrets
 * and no other. Nothing here throws: a secret that cannot be read fails the layer that uses it,
 * with the reason.
 */
export async function awsSourceSecrets(options: AwsSourceSecretsOptions): Promise<SourceSecretLookup> {
  const names = [...new Set(options.document.layers.flatMap((l) => (l.source ? [l.source.secret_name] : [])))];
  const found = new Map<string, SourceSecret | Error>();
  const lookup: SourceSecretLookup = async (name) => {
    const value = found.get(name);
    if (value instanceof Error) throw value;
    return value;
  };
  if (names.length === 0) return lookup;
  const failAll = (reason: string) => {
    for (const name of names) found.set(name, new Error(reason));
    return lookup;
  };
  if (!options.secretPrefix) return failAll('the runner was not told the sources\' secret prefix (RUNNER_SOURCE_SECRET_PREFIX)');
  let access: SourceAccessDocument;
  try {
    access = await takeAccess(options);
  } catch (error) {
    return failAll((error as Error).message);
  }
  const expiration = new Date(access.credentials.expiration);
  if (expiration.getTime() <= (options.now ?? (() => new Date()))().getTime()) return failAll(expiredReason(access.credentials.expiration));
  const client = await (options.secretsClient ?? defaultSecretsClient)({
    accessKeyId: access.credentials.access_key_id,
    secretAccessKey: access.credentials.secret_access_key,
    sessionToken: access.credentials.session_token,
    expiration,
  });
  const { GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
  for (const name of names) {
    if (!access.secrets.includes(name)) {
      found.set(name, new Error(`RenderInventory granted no access to the secret '${name}'`));
      continue;
    }
    try {
      const { SecretString } = await client.send(new GetSecretValueCommand({ SecretId: `${options.secretPrefix}${name}` }));
      found.set(name, loginOf(name, SecretString));
    } catch (error) {
      const e = error as Error;
      found.set(name, new Error(e.name === 'ExpiredTokenException' ? expiredReason(access.credentials.expiration) : `Secrets Manager: ${e.name}: ${e.message}`));
    }
  }
  client.destroy();
  return lookup;
}
