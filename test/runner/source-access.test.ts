import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { S3ArtifactStore } from '../../functions/adapters/aws/s3-artifact-store.ts';
import { newRunnerToken } from '../../functions/core/workflow/run-document-store.ts';
import { runnerKeys } from '../../functions/core/workflow/session-keys.ts';
import type { RunDocument } from '../../functions/core/workflow/run-document.ts';
import { main } from '../../functions/runner/main.ts';
import { awsSourceSecrets, type AccessCredentials } from '../../functions/runner/source-access.ts';
import { startLocalS3, type LocalS3 } from '../helpers/local-s3.ts';
import { runDocumentFor } from '../helpers/run-document.ts';

const BUCKET = 'cfs-artifacts';
const PREFIX = 'cfs/CfsTest/sources/';
const NOW = new Date('2026-11-26T10:30:00Z');
const LOGIN = { username: 'builder', password: 'p4ss-w0rd' };

let server: LocalS3;
let directory: string;
let store: S3ArtifactStore;
const secrets = mockClient(SecretsManagerClient);

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 's3rver-sources-'));
  server = await startLocalS3(directory, [BUCKET]);
  store = new S3ArtifactStore(server.client, { bucket: BUCKET });
});
afterAll(async () => {
  secrets.restore();
  await server.close();
  await rm(directory, { recursive: true, force: true });
});
beforeEach(() => secrets.reset());

/** A runner's run document under a fresh prefix whose layers name the given sources (by secret name). */
function runWithSources(...secretNames: string[]) {
  const keys = runnerKeys(newRunnerToken());
  const base = runDocumentFor('compute-1', keys, { cloneUrl: 'https://git.example/base.git' });
  const layers = [base.layers[0]!, ...secretNames.map((secret, i) => ({ ...base.layers[0]!, index: i + 1, name: `sourced-${i}`, source: { name: `src-${i}`, secret_name: secret } }))];
  const document = { ...base, layers } as unknown as RunDocument;
  return { keys, document };
}

async function leaveAccess(keys: ReturnType<typeof runnerKeys>, granted: string[], expiration = '2026-11-26T11:00:00.000Z') {
  const access = { secrets: granted, credentials: { access_key_id: 'ASIATEST', secret_access_key: 'temporary-secret-key', session_token: 'temporary-token', expiration } };
  await store.put(keys.sourceAccess, JSON.stringify(access), { contentType: 'application/json' });
}

/** A mocked client that records the credentials it was made with. */
function recordingClient(seen: AccessCredentials[]) {
  return async (credentials: AccessCredentials) => {
    seen.push(credentials);
    return new SecretsManagerClient({ region: 'eu-west-1', credentials });
  };
}

describe("the runner's sources' logins in AWS", () => {
  it('reads the access RenderInventory left, deletes it, and reads each named secret with those credentials', async () => {
    // Arrange
    const { keys, document } = runWithSources('gitea-login', 'mirror-login', 'gitea-login');
    await leaveAccess(keys, ['gitea-login', 'mirror-login']);
    secrets.on(GetSecretValueCommand, { SecretId: `${PREFIX}gitea-login` }).resolves({ SecretString: JSON.stringify(LOGIN) });
    secrets.on(GetSecretValueCommand, { SecretId: `${PREFIX}mirror-login` }).resolves({ SecretString: JSON.stringify({ username: 'mirror', password: 'other' }) });
    const seen: AccessCredentials[] = [];
    // Act
    const lookup = await awsSourceSecrets({ store, documentKey: keys.runDocument, document, secretPrefix: PREFIX, now: () => NOW, secretsClient: recordingClient(seen) });
    // Assert
    expect(await lookup('gitea-login')).toEqual(LOGIN);
    expect(await lookup('mirror-login')).toEqual({ username: 'mirror', password: 'other' });
    expect(secrets.commandCalls(GetSecretValueCommand).map((c) => c.args[0].input.SecretId).sort()).toEqual([`${PREFIX}gitea-login`, `${PREFIX}mirror-login`]);
    expect(seen).toEqual([{ accessKeyId: 'ASIATEST', secretAccessKey: 'temporary-secret-key', sessionToken: 'temporary-token', expiration: new Date('2026-11-26T11:00:00Z') }]);
    expect(await store.head(keys.sourceAccess)).toBeUndefined();
  });

  it('fails each source-backed layer with the expiry when the runner started after its access expired, without asking Secrets Manager', async () => {
    // Arrange
    const { keys, document } = runWithSources('gitea-login');
    await leaveAccess(keys, ['gitea-login'], '2026-11-26T10:00:00.000Z');
    // Act
    const lookup = await awsSourceSecrets({ store, documentKey: keys.runDocument, document, secretPrefix: PREFIX, now: () => NOW, secretsClient: recordingClient([]) });
    // Assert
    await expect(lookup('gitea-login')).rejects.toThrow(/expired at 2026-11-26T10:00:00.000Z .*one hour/);
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(0);
    expect(await store.head(keys.sourceAccess)).toBeUndefined();
  });

  it('says the access expired when Secrets Manager refuses the token as expired', async () => {
    // Arrange
    const { keys, document } = runWithSources('gitea-login');
    await leaveAccess(keys, ['gitea-login']);
    secrets.on(GetSecretValueCommand).rejects(Object.assign(new Error('The security token included in the request is expired'), { name: 'ExpiredTokenException' }));
    // Act
    const lookup = await awsSourceSecrets({ store, documentKey: keys.runDocument, document, secretPrefix: PREFIX, now: () => NOW, secretsClient: recordingClient([]) });
    // Assert
    await expect(lookup('gitea-login')).rejects.toThrow(/source access expired/);
  });

  it('names the missing access object when RenderInventory left none', async () => {
    // Arrange
    const { keys, document } = runWithSources('gitea-login');
    // Act
    const lookup = await awsSourceSecrets({ store, documentKey: keys.runDocument, document, secretPrefix: PREFIX, now: () => NOW, secretsClient: recordingClient([]) });
    // Assert
    await expect(lookup('gitea-login')).rejects.toThrow(`cannot read ${keys.sourceAccess}`);
  });

  it('never repeats a malformed secret in its reason', async () => {
    // Arrange
    const { keys, document } = runWithSources('gitea-login');
    await leaveAccess(keys, ['gitea-login']);
    secrets.on(GetSecretValueCommand).resolves({ SecretString: 'hunter2-not-json' });
    // Act
    const lookup = await awsSourceSecrets({ store, documentKey: keys.runDocument, document, secretPrefix: PREFIX, now: () => NOW, secretsClient: recordingClient([]) });
    // Assert
    const failure = await lookup('gitea-login').catch((error: Error) => error.message);
    expect(failure).toBe("the secret 'gitea-login' is not a username and password");
  });

  it('reads nothing for a run whose layers name no source', async () => {
    // Arrange
    const { keys, document } = runWithSources();
    await leaveAccess(keys, ['stray-login']);
    // Act
    const lookup = await awsSourceSecrets({ store, documentKey: keys.runDocument, document, secretPrefix: PREFIX, now: () => NOW, secretsClient: recordingClient([]) });
    // Assert
    expect(await lookup('stray-login')).toBeUndefined();
    expect(await store.head(keys.sourceAccess)).toBeDefined();
  });

  it('takes the access and reads the secrets in main when it runs against S3 with no descriptor (the ECS task)', async () => {
    // Arrange
    const { keys, document } = runWithSources('gitea-login');
    const far = new Date(Date.now() + 3_000_000).toISOString();
    await leaveAccess(keys, ['gitea-login'], far);
    await store.put(keys.runDocument, JSON.stringify(document));
    secrets.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify(LOGIN) });
    const workspace = join(directory, 'workspace');
    const endpoint = await server.client.config.endpoint!();
    const env = {
      RUN_DOCUMENT_KEY: keys.runDocument,
      RUNNER_WORKSPACE: workspace,
      ARTIFACT_BUCKET: BUCKET,
      ARTIFACT_S3_ENDPOINT: `${endpoint.protocol}//${endpoint.hostname}:${endpoint.port}`,
      RUNNER_SANDBOX: 'container',
      RUNNER_SOURCE_SECRET_PREFIX: PREFIX,
    };
    const saved = { ...process.env };
    Object.assign(process.env, { AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' });
    // Act
    try {
      await main([], env);
    } finally {
      process.env = saved;
    }
    // Assert
    const calls = secrets.commandCalls(GetSecretValueCommand);
    expect(calls.map((c) => c.args[0].input.SecretId)).toEqual([`${PREFIX}gitea-login`]);
    const client = calls[0]!.thisValue as SecretsManagerClient;
    expect(await client.config.credentials()).toMatchObject({ accessKeyId: 'ASIATEST', sessionToken: 'temporary-token' });
    expect(await store.head(keys.sourceAccess)).toBeUndefined();
  });
});
