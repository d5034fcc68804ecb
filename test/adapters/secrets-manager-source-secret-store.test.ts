import { CreateSecretCommand, DeleteSecretCommand, GetSecretValueCommand, PutSecretValueCommand, ResourceExistsException, ResourceNotFoundException, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import { SecretsManagerSourceSecretStore } from '../../functions/adapters/aws/secrets-manager-source-secret-store.ts';
import { suiteMock } from '../helpers/suite-mock.ts';

// No Secrets Manager runs on this machine: the calls and their error paths against the SDK's mock.
const secrets = suiteMock(SecretsManagerClient);
const store = () => new SecretsManagerSourceSecretStore(new SecretsManagerClient({ region: 'us-east-1' }), 'cfs/stack-1/sources/');

describe('SecretsManagerSourceSecretStore', () => {
  it('creates a new secret under the stack prefix, holding only the username and password', async () => {
    // Arrange
    secrets.on(CreateSecretCommand).resolves({});
    // Act
    await store().put('cfs-source-1', { username: 'u', password: 'p' });
    // Assert
    const [call] = secrets.commandCalls(CreateSecretCommand);
    expect(call!.args[0].input).toMatchObject({ Name: 'cfs/stack-1/sources/cfs-source-1', SecretString: '{"username":"u","password":"p"}' });
  });

  it('puts a new value when the secret exists already', async () => {
    // Arrange
    secrets.on(CreateSecretCommand).rejects(new ResourceExistsException({ message: 'exists', $metadata: {} }));
    secrets.on(PutSecretValueCommand).resolves({});
    // Act
    await store().put('cfs-source-1', { username: 'u', password: 'p2' });
    // Assert
    expect(secrets.commandCalls(PutSecretValueCommand)[0]!.args[0].input).toEqual({ SecretId: 'cfs/stack-1/sources/cfs-source-1', SecretString: '{"username":"u","password":"p2"}' });
  });

  it('reads a login back, and undefined for a secret that is gone', async () => {
    // Arrange
    secrets.on(GetSecretValueCommand, { SecretId: 'cfs/stack-1/sources/a' }).resolves({ SecretString: '{"username":"u","password":"p"}' });
    secrets.on(GetSecretValueCommand, { SecretId: 'cfs/stack-1/sources/b' }).rejects(new ResourceNotFoundException({ message: 'gone', $metadata: {} }));
    // Act
    const [a, b] = await Promise.all([store().get('a'), store().get('b')]);
    // Assert
    expect(a).toEqual({ username: 'u', password: 'p' });
    expect(b).toBeUndefined();
  });

  it('deletes without a recovery window and takes a missing secret as deleted', async () => {
    // Arrange
    secrets.on(DeleteSecretCommand).rejects(new ResourceNotFoundException({ message: 'gone', $metadata: {} }));
    // Act
    await store().delete('cfs-source-1');
    // Assert
    expect(secrets.commandCalls(DeleteSecretCommand)[0]!.args[0].input).toEqual({ SecretId: 'cfs/stack-1/sources/cfs-source-1', ForceDeleteWithoutRecovery: true });
  });

  it('refuses a secret name that could leave the prefix, before any call', async () => {
    // Act
    const problem = store().nameProblem('../other-stack/x');
    // Assert
    expect(problem).toMatch(/letters, digits/);
    await expect(store().get('../other-stack/x')).rejects.toThrow(/secret name/);
    expect(secrets.calls()).toHaveLength(0);
  });
});
