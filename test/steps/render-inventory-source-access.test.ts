import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { roleSessionName, SOURCE_ACCESS_SECONDS, sourceAccessIssuerFrom, StsSourceAccessIssuer } from '../../functions/adapters/aws/source-access.ts';
import { AWS_ENV } from '../../functions/adapters/aws/environment.ts';
import { sourceAccessDocumentSchema } from '../../functions/core/sources/source-access-document.ts';
import type { SourceRecord } from '../../functions/core/sources/source-record.ts';
import { readRunDocument } from '../../functions/core/workflow/run-document-store.ts';
import { runnerPrefixOf } from '../../functions/core/workflow/session-keys.ts';
import type { SourceStore } from '../../functions/ports/source-store.ts';
import { renderInventoryStep } from '../../functions/steps/render-inventory.ts';
import { stageImage } from '../../functions/steps/stage-image.ts';
import { fakeStepPorts, type FakeStepPorts } from '../helpers/in-memory-ports.ts';
import { pendingSession, registerImage } from '../helpers/session-fixtures.ts';

const A = '11111111-1111-4111-8111-111111111111';
const ROLE = 'arn:aws:iam::123456789012:role/cfs-source-reader';
const ARN_PREFIX = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:cfs/CfsTest/sources/';
const EXPIRATION = new Date('2026-11-26T11:00:00Z');
const COMMIT = 'a'.repeat(40);

/** Sources by name, as the table would answer render-inventory (only `get` is used by the step). */
function sourcesOf(records: SourceRecord[]): SourceStore {
  const byName = new Map(records.map((r) => [r.name, r]));
  return { get: async (name: string) => byName.get(name) } as unknown as SourceStore;
}

const source = (name: string, secretName: string): SourceRecord => ({
  name,
  last_updated: '2026-11-26T09:00:00Z',
  clone_url: `https://git.example/${name}.git`,
  credentials: { authentication_method: 'password', secret_name: secretName },
});

async function text(ports: FakeStepPorts, key: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of await ports.artifacts.get(key)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const layer = (name: string, sourceName?: string) => ({ name, clone_url: `https://git.example/${sourceName ?? name}.git`, commit: COMMIT, playbook: 'site.yml', ...(sourceName ? { source: sourceName } : {}) });

describe("RenderInventory in AWS: the runner's access to its own session's sources", () => {
  const sts = mockClient(STSClient);
  let ports: FakeStepPorts;

  beforeEach(() => {
    sts.reset();
    sts.on(AssumeRoleCommand).resolves({ Credentials: { AccessKeyId: 'ASIATEST', SecretAccessKey: 'temporary-secret-key', SessionToken: 'temporary-token', Expiration: EXPIRATION } });
    ports = fakeStepPorts();
    ports.sources = sourcesOf([source('gitea', 'gitea-login'), source('mirror', 'mirror-login'), source('unused', 'unused-login')]);
    ports.sourceAccess = new StsSourceAccessIssuer(new STSClient({ region: 'eu-west-1' }), { roleArn: ROLE, secretArnPrefix: ARN_PREFIX });
  });
  afterEach(() => ports.dispose());
  afterAll(() => sts.restore());

  async function renderWithLayers(session: string, layers: ReturnType<typeof layer>[]) {
    await registerImage(ports, A, 'a');
    await ports.sessionTable.create(pendingSession(session, { Compute: [A] }));
    await ports.sessions.update(session, (s) => ({ ...s, status: { ...s.status, layers } }));
    await stageImage(ports, { session, image_id: A });
    return renderInventoryStep(ports, { session });
  }

  it("assumes the SourceReader role for one hour with a session policy naming exactly the session's secrets", async () => {
    // Act
    await renderWithLayers('compute-1', [layer('one', 'gitea'), layer('plain'), layer('two', 'mirror'), layer('three', 'gitea')]);
    // Assert
    const calls = sts.commandCalls(AssumeRoleCommand);
    expect(calls).toHaveLength(1);
    const input = calls[0]!.args[0].input;
    expect(input).toMatchObject({ RoleArn: ROLE, RoleSessionName: 'cfs-compute-1', DurationSeconds: 3600 });
    expect(JSON.parse(input.Policy!)).toEqual({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: [`${ARN_PREFIX}gitea-login-??????`, `${ARN_PREFIX}mirror-login-??????`] }],
    });
  });

  it("writes the credentials under the session's runner prefix only, never into the step's output or the run document", async () => {
    // Act
    const output = await renderWithLayers('compute-1', [layer('one', 'gitea')]);
    // Assert
    const prefix = runnerPrefixOf(output.document_key)!;
    const stored = (await ports.artifacts.list('')).filter((key) => key.includes('source-access'));
    expect(stored).toEqual([`${prefix}source-access.json`]);
    const access = sourceAccessDocumentSchema.parse(JSON.parse(await text(ports, stored[0]!)));
    expect(access).toEqual({
      secrets: ['gitea-login'],
      credentials: { access_key_id: 'ASIATEST', secret_access_key: 'temporary-secret-key', session_token: 'temporary-token', expiration: EXPIRATION.toISOString() },
    });
    expect(JSON.stringify(output)).not.toContain('temporary');
    expect(JSON.stringify(await readRunDocument(ports.artifacts, 'compute-1'))).not.toContain('temporary');
  });

  it('asks STS for nothing and writes no access when no layer names a source', async () => {
    // Act
    await renderWithLayers('compute-1', [layer('plain')]);
    // Assert
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(0);
    expect((await ports.artifacts.list('')).filter((key) => key.includes('source-access'))).toEqual([]);
  });

  it("removes an earlier attempt's access with its prefix when the step runs again", async () => {
    // Arrange
    const first = await renderWithLayers('compute-1', [layer('one', 'gitea')]);
    // Act
    const second = await renderInventoryStep(ports, { session: 'compute-1' });
    // Assert
    expect((await ports.artifacts.list('')).filter((key) => key.includes('source-access'))).toEqual([`${runnerPrefixOf(second.document_key)!}source-access.json`]);
    expect(runnerPrefixOf(first.document_key)).not.toBe(runnerPrefixOf(second.document_key));
  });

  it('fails the step with a reason when the secrets are too many for one session policy, before asking STS', async () => {
    // Arrange
    const issuer = new StsSourceAccessIssuer(new STSClient({ region: 'eu-west-1' }), { roleArn: ROLE, secretArnPrefix: ARN_PREFIX });
    const names = Array.from({ length: 40 }, (_, i) => `source-number-${i}-login`);
    // Act
    const issued = issuer.issue('compute-1', names);
    // Assert
    await expect(issued).rejects.toMatchObject({ name: 'ValidationError', message: expect.stringContaining('40 sources') });
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(0);
  });

  it('leaves a throttled AssumeRole to the state machine\'s retry and a refused one as it is', async () => {
    // Arrange
    const issuer = new StsSourceAccessIssuer(new STSClient({ region: 'eu-west-1' }), { roleArn: ROLE, secretArnPrefix: ARN_PREFIX });
    sts
      .on(AssumeRoleCommand)
      .rejectsOnce(Object.assign(new Error('Rate exceeded'), { name: 'Throttling', $metadata: { httpStatusCode: 400 } }))
      .rejectsOnce(Object.assign(new Error('not authorized to perform sts:AssumeRole'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }));
    // Act
    const throttled = issuer.issue('compute-1', ['gitea-login']);
    await expect(throttled).rejects.toMatchObject({ name: 'TransientError' });
    const refused = issuer.issue('compute-1', ['gitea-login']);
    // Assert
    await expect(refused).rejects.toMatchObject({ name: 'AccessDenied' });
  });

  it('makes a role session name STS accepts from any session name', () => {
    // Act
    const names = [roleSessionName('a'), roleSessionName('weird name/with:chars'), roleSessionName('x'.repeat(100))];
    // Assert
    for (const name of names) expect(name).toMatch(/^[\w+=,.@-]{2,64}$/);
    expect(names[1]).toBe('cfs-weird-name-with-chars');
    expect(SOURCE_ACCESS_SECONDS).toBe(3600);
  });

  it('is configured only where the stack names both the role and a secret ARN prefix', () => {
    // Act
    const none = sourceAccessIssuerFrom({ [AWS_ENV.SOURCE_READER_ROLE_ARN]: ROLE }, () => new STSClient({}));
    const both = sourceAccessIssuerFrom({ [AWS_ENV.SOURCE_READER_ROLE_ARN]: ROLE, [AWS_ENV.SOURCE_SECRET_ARN_PREFIX]: ARN_PREFIX }, () => new STSClient({}));
    // Assert
    expect(none).toBeUndefined();
    expect(both).toBeInstanceOf(StsSourceAccessIssuer);
    expect(() => sourceAccessIssuerFrom({ [AWS_ENV.SOURCE_READER_ROLE_ARN]: ROLE, [AWS_ENV.SOURCE_SECRET_ARN_PREFIX]: 'cfs/CfsTest/sources/' }, () => new STSClient({}))).toThrow(/ARN prefix/);
  });
});
