import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

/**
 * Reads a token kept as the plain SecretString of a Secrets Manager secret (the dashboard token,
 * which the stack generates). `secretId` comes from the environment, so a missing one is reported
 * at the first read with the variable's name, not at import.
 */
export function secretToken(client: SecretsManagerClient, secretId: string | undefined, envName: string): () => Promise<string> {
  return async () => {
    if (!secretId) throw new Error(`${envName} is not set`);
    const { SecretString } = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
    const token = SecretString?.trim();
    if (!token) throw new Error(`the secret ${secretId} has no string value`);
    return token;
  };
}
