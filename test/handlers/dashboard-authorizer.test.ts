import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { secretToken } from '../../functions/adapters/aws/secrets-manager-token.ts';
import { AWS_ENV } from '../../functions/adapters/aws/environment.ts';
import { dashboardAuthorizer, mirrorMethodArns } from '../../functions/handlers/dashboard-authorizer.ts';

/**
 * The dashboard's API Gateway TOKEN authorizer, with Secrets Manager mocked (it cannot run here):
 * the right bearer token gets a policy for the read-only mirror only; anything else is API
 * Gateway's `Unauthorized`.
 */
const TOKEN = 'Zq3v9K1mWp7Lx2Rt8Yb4Nc6Hd0Jf5Sg1Ua3Ee7Io9Qw2Ty4';
const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:ApiDashboardToken-AbCdEf';
const STAGE = 'arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/v1';
const event = (authorizationToken: string | undefined, path = 'GET/dashboard/apis/cfs/v3/sessions') => ({ type: 'TOKEN', authorizationToken, methodArn: `${STAGE}/${path}` });

const secrets = mockClient(SecretsManagerClient);
afterEach(() => secrets.reset());

function authorizer() {
  secrets.on(GetSecretValueCommand, { SecretId: SECRET_ARN }).resolves({ SecretString: TOKEN });
  return dashboardAuthorizer(secretToken(new SecretsManagerClient({ region: 'eu-west-1' }), SECRET_ARN, AWS_ENV.DASHBOARD_TOKEN_SECRET_ARN));
}

describe('the dashboard authorizer', () => {
  it('allows the right bearer token, for GET and HEAD of the mirror on its stage and nothing else', async () => {
    // Arrange
    const authorize = authorizer();
    // Act
    const result = await authorize(event(`Bearer ${TOKEN}`));
    // Assert
    expect(result).toEqual({
      principalId: 'cfs-dashboard',
      policyDocument: {
        Version: '2012-10-17',
        Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: [`${STAGE}/GET/dashboard/apis/*`, `${STAGE}/HEAD/dashboard/apis/*`] }],
      },
    });
  });

  it.each([
    ['no header', undefined],
    ['an empty header', ''],
    ['a wrong token', 'Bearer not-the-dashboard-token'],
    ['a near miss (one character short)', `Bearer ${TOKEN.slice(0, -1)}`],
    ['a near miss (one character more)', `Bearer ${TOKEN}x`],
    ['a near miss (last character changed)', `Bearer ${TOKEN.slice(0, -1)}5`],
    ['another scheme', `Basic ${TOKEN}`],
    ['the bare token without a scheme', TOKEN],
  ])('answers Unauthorized (a 401) for %s', async (_what, header) => {
    // Arrange
    const authorize = authorizer();
    // Act
    const result = authorize(event(header));
    // Assert
    await expect(result).rejects.toThrow(/^Unauthorized$/);
  });

  it('reads the secret once per container, whatever the number of requests', async () => {
    // Arrange
    const authorize = authorizer();
    // Act
    await authorize(event(`Bearer ${TOKEN}`));
    await expect(authorize(event('Bearer wrong'))).rejects.toThrow('Unauthorized');
    await authorize(event(`bearer ${TOKEN}`, 'HEAD/dashboard/apis/ims/v3/images'));
    // Assert
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(1);
  });

  it('fails (a 500 from API Gateway, not a cached denial) when the secret cannot be read, and tries again next time', async () => {
    // Arrange
    secrets.on(GetSecretValueCommand).rejectsOnce(Object.assign(new Error('not authorized to perform secretsmanager:GetSecretValue'), { name: 'AccessDeniedException' })).resolves({ SecretString: TOKEN });
    const authorize = dashboardAuthorizer(secretToken(new SecretsManagerClient({ region: 'eu-west-1' }), SECRET_ARN, AWS_ENV.DASHBOARD_TOKEN_SECRET_ARN));
    // Act
    const first = authorize(event(`Bearer ${TOKEN}`));
    // Assert
    await expect(first).rejects.toThrow('not authorized to perform secretsmanager:GetSecretValue');
    await expect(authorize(event(`Bearer ${TOKEN}`))).resolves.toMatchObject({ principalId: 'cfs-dashboard' });
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('fails loudly, naming the variable, when the secret ARN was not given', async () => {
    // Arrange
    const authorize = dashboardAuthorizer(secretToken(new SecretsManagerClient({ region: 'eu-west-1' }), undefined, AWS_ENV.DASHBOARD_TOKEN_SECRET_ARN));
    // Act
    const result = authorize(event(`Bearer ${TOKEN}`));
    // Assert
    await expect(result).rejects.toThrow('CFS_DASHBOARD_TOKEN_SECRET_ARN is not set');
  });

  it('scopes the policy to the stage of the method called, and refuses a method ARN it cannot read', () => {
    // Act
    const other = mirrorMethodArns('arn:aws-cn:execute-api:cn-north-1:123456789012:zz99yy88xx/prod/GET/dashboard/apis/cfs/v3/sessions');
    const malformed = mirrorMethodArns('arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5');
    // Assert
    expect(other).toEqual(['arn:aws-cn:execute-api:cn-north-1:123456789012:zz99yy88xx/prod/GET/dashboard/apis/*', 'arn:aws-cn:execute-api:cn-north-1:123456789012:zz99yy88xx/prod/HEAD/dashboard/apis/*']);
    expect(malformed).toBeUndefined();
  });
});
