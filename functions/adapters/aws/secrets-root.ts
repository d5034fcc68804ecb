import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { AWS_ENV } from './environment.ts';
import { secretToken } from './secrets-manager-token.ts';

/**
 * Part of the AWS composition root (index.ts) in a module of its own: the dashboard authorizer's
 * token reader, on a Secrets Manager client made once per cold start. It imports nothing of
 * index.ts, so the authorizer's bundle carries neither the table nor the bucket clients.
 */
export function dashboardTokenReader(env: Record<string, string | undefined> = process.env): () => Promise<string> {
  return secretToken(new SecretsManagerClient({}), env[AWS_ENV.DASHBOARD_TOKEN_SECRET_ARN], AWS_ENV.DASHBOARD_TOKEN_SECRET_ARN);
}
