import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { AWS_ENV } from '../../functions/adapters/aws/environment.ts';
import { acknowledge } from '../nag.ts';
import { BundledFunction } from './bundled-function.ts';

export interface CfsApiProps {
  handler: lambda.IFunction;
  rateLimit: number;
  burstLimit: number;
  logRetention: logs.RetentionDays;
}

/** A gateway error as problem+json, like every error the app itself returns. */
const PROBLEM_TEMPLATE = '{"type":"about:blank","title":"$context.error.responseType","detail":$context.error.messageString}';

/**
 * The API: a REST API in front of one Lambda running the same Hono app as the embedded server (a
 * proxy integration: the app routes `/apis/cfs/...` and `/apis/ims/...` itself). Every method
 * requires IAM (SigV4) authorization but the dashboard's, which a browser must reach without a
 * signature: `GET /` and `GET /dashboard/{file}` (the static page, no data) need none, and the
 * page's read-only mirror of the API, GET and HEAD of `/dashboard/apis/{proxy+}`, needs the
 * dashboard token (a bearer token kept in Secrets Manager, checked by a Lambda authorizer). A
 * request validator checks what the gateway can know (the path parameters); request bodies are
 * checked by the app's own schemas, which name the offending field. Access logs in JSON, stage
 * throttling, and gateway errors (a missing or bad signature or token, throttling) answered as
 * problem+json too.
 */
export class CfsApi extends Construct {
  readonly api: apigw.RestApi;
  /** The dashboard's bearer token (generated; operators read it with `aws secretsmanager get-secret-value`). */
  readonly dashboardToken: secretsmanager.Secret;
  readonly dashboardAuthorizer: BundledFunction;

  constructor(scope: Construct, id: string, props: CfsApiProps) {
    super(scope, id);
    const accessLogs = new logs.LogGroup(this, 'AccessLogs', { retention: props.logRetention, removalPolicy: RemovalPolicy.DESTROY });
    this.api = new apigw.RestApi(this, 'Api', {
      description: 'CFS image customization (CFS v2/v3 and IMS v3 paths), IAM authorization; the read-only dashboard with a token',
      endpointConfiguration: { types: [apigw.EndpointType.REGIONAL] },
      cloudWatchRole: false,
      deployOptions: {
        stageName: 'v1',
        accessLogDestination: new apigw.LogGroupLogDestination(accessLogs),
        accessLogFormat: apigw.AccessLogFormat.jsonWithStandardFields({
          caller: true,
          httpMethod: true,
          ip: true,
          protocol: true,
          requestTime: true,
          resourcePath: true,
          responseLength: true,
          status: true,
          user: true,
        }),
        throttlingRateLimit: props.rateLimit,
        throttlingBurstLimit: props.burstLimit,
        tracingEnabled: true,
      },
    });
    acknowledge(
      this.api.deploymentStage,
      'AwsSolutions-APIG3',
      'Every method requires a SigV4 signature from an IAM principal of the account, and the stage is throttled; a WAF web ACL (from about 5 USD a month plus per request) is left to deployments that expose the API more widely.',
    );
    acknowledge(
      this.api.deploymentStage,
      'AwsSolutions-APIG6',
      'Access logs record every request; execution logging needs the account-wide API Gateway CloudWatch role (one per account and region, shared by every API), which this stack does not take over.',
    );
    acknowledge(
      this.api,
      'AwsSolutions-COG4',
      "The API is for operators and their tools, which sign requests with their IAM credentials (SigV4), as the CLI does; the dashboard's read-only mirror takes the dashboard token from Secrets Manager instead (a browser cannot sign), and its static files hold no data.",
    );
    const validator = this.api.addRequestValidator('Validator', { validateRequestParameters: true, validateRequestBody: true });
    const integration = new apigw.LambdaIntegration(props.handler, { proxy: true });
    const options: apigw.MethodOptions = { authorizationType: apigw.AuthorizationType.IAM, requestValidator: validator };
    const pathParameter = (name: string) => ({ requestParameters: { [`method.request.path.${name}`]: true } });
    this.api.root.addMethod('ANY', integration, options);
    this.api.root.addResource('{proxy+}').addMethod('ANY', integration, { ...options, ...pathParameter('proxy') });

    // The dashboard. Its resources keep IAM on every other method (a signed POST reaches the app's 405).
    this.dashboardToken = new secretsmanager.Secret(this, 'DashboardToken', {
      description: "The CFS dashboard's bearer token: read-only access to the API through GET /dashboard/apis/...",
      generateSecretString: { passwordLength: 48, excludePunctuation: true, includeSpace: false },
    });
    acknowledge(
      this.dashboardToken,
      'AwsSolutions-SMG4',
      "The dashboard token is a bearer token handed to operators, not a credential of another service a rotation Lambda could change in step; it is replaced by hand (put-secret-value), and it can only read: the mirror it opens answers GET and HEAD only.",
    );
    this.dashboardAuthorizer = new BundledFunction(this, 'DashboardAuthorizer', {
      entry: 'dashboard-authorizer',
      description: "Checks the dashboard's bearer token for its read-only API mirror",
      memorySize: 256,
      timeout: Duration.seconds(10),
      environment: { [AWS_ENV.DASHBOARD_TOKEN_SECRET_ARN]: this.dashboardToken.secretArn },
      logRetention: props.logRetention,
    });
    // Only the authorizer reads the token (GetSecretValue and DescribeSecret on this secret).
    this.dashboardToken.grantRead(this.dashboardAuthorizer.function);
    const tokenAuthorizer = new apigw.TokenAuthorizer(this, 'DashboardTokenAuthorizer', {
      handler: this.dashboardAuthorizer.function,
      identitySource: apigw.IdentitySource.header('Authorization'),
      // One check per token per 5 minutes: the allowed policy covers the whole mirror (see mirrorMethodArns).
      resultsCacheTtl: Duration.minutes(5),
    });
    const unsigned: apigw.MethodOptions = { authorizationType: apigw.AuthorizationType.NONE, requestValidator: validator };
    const page = this.api.root.addMethod('GET', integration, unsigned);
    const dashboard = this.api.root.addResource('dashboard');
    dashboard.addMethod('ANY', integration, options);
    const file = dashboard.addResource('{file}');
    const fileGet = file.addMethod('GET', integration, { ...unsigned, ...pathParameter('file') });
    file.addMethod('ANY', integration, { ...options, ...pathParameter('file') });
    for (const method of [page, fileGet]) {
      acknowledge(method, 'AwsSolutions-APIG4', "The dashboard's static page, scripts and styles (no data): a browser loads them before it can send the dashboard token.");
    }
    const mirrorRoot = dashboard.addResource('apis');
    mirrorRoot.addMethod('ANY', integration, options);
    const mirror = mirrorRoot.addResource('{proxy+}');
    for (const method of ['GET', 'HEAD']) {
      mirror.addMethod(method, integration, { authorizationType: apigw.AuthorizationType.CUSTOM, authorizer: tokenAuthorizer, requestValidator: validator, ...pathParameter('proxy') });
    }
    mirror.addMethod('ANY', integration, { ...options, ...pathParameter('proxy') });

    for (const [name, type] of [
      ['Default4xx', apigw.ResponseType.DEFAULT_4XX],
      ['Default5xx', apigw.ResponseType.DEFAULT_5XX],
    ] as const) {
      this.api.addGatewayResponse(name, {
        type,
        responseHeaders: { 'Content-Type': "'application/problem+json'" },
        templates: { 'application/json': PROBLEM_TEMPLATE },
      });
    }
  }
}
