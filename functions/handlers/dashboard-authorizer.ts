import { dashboardTokenReader } from '../adapters/aws/secrets-root.ts';
import { bearerTokenChecker, type BearerCheck } from '../api/auth.ts';
import { DASHBOARD_API_MIRROR_PREFIX } from '../api/routes/dashboard.ts';

/** What API Gateway hands a Lambda TOKEN authorizer: the `Authorization` header and the method called. */
export interface TokenAuthorizerEvent {
  type: string;
  authorizationToken?: string;
  methodArn: string;
}

/** An IAM policy for `execute-api:Invoke`, which API Gateway caches per token for the authorizer's TTL. */
export interface AuthorizerResult {
  principalId: string;
  policyDocument: { Version: '2012-10-17'; Statement: { Action: 'execute-api:Invoke'; Effect: 'Allow'; Resource: string[] }[] };
}

// arn:<partition>:execute-api:<region>:<account>:<api id>/<stage>/<METHOD>/<path...>
const METHOD_ARN = /^(arn:[\w-]+:execute-api:[\w-]+:\d{12}:[\w-]+)\/([\w-]+)\/[A-Z]+\/.*$/;

/**
 * The methods a valid dashboard token may call: GET and HEAD of the read-only mirror, on the stage
 * the request came through. The whole family, not just the method called, because API Gateway
 * caches this policy per token and applies it to the next mirror paths too; never another method.
 */
export function mirrorMethodArns(methodArn: string): string[] | undefined {
  const match = METHOD_ARN.exec(methodArn);
  if (!match) return undefined;
  const [, api, stage] = match;
  return ['GET', 'HEAD'].map((method) => `${api}/${stage}/${method}${DASHBOARD_API_MIRROR_PREFIX}*`);
}

/**
 * The dashboard's API Gateway authorizer: allows the read-only mirror for `Authorization: Bearer
 * <token>` with the dashboard token (compared in constant time, as the embedded server does), and
 * answers anything else with API Gateway's `Unauthorized` (a 401). The token is read once per
 * container through `readToken`; a failed read is tried again on the next request.
 */
export function dashboardAuthorizer(readToken: () => Promise<string>) {
  let checker: Promise<(header: string | undefined) => BearerCheck> | undefined;
  return async (event: TokenAuthorizerEvent): Promise<AuthorizerResult> => {
    checker ??= readToken().then(bearerTokenChecker, (error: unknown) => {
      checker = undefined;
      throw error;
    });
    const check = await checker;
    const resources = mirrorMethodArns(event.methodArn);
    // This exact message is what makes API Gateway answer 401 (any other error is a 500).
    if (check(event.authorizationToken) !== 'valid' || resources === undefined) throw new Error('Unauthorized');
    return {
      principalId: 'cfs-dashboard',
      policyDocument: { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: resources }] },
    };
  };
}

export const handler = dashboardAuthorizer(dashboardTokenReader());
