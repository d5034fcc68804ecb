import { RemovalPolicy } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledge } from '../nag.ts';

export interface CfsApiProps {
  handler: lambda.IFunction;
  rateLimit: number;
  burstLimit: number;
  logRetention: logs.RetentionDays;
}

/** A gateway error as problem+json, like every error the app itself returns. */
const PROBLEM_TEMPLATE = '{"type":"about:blank","title":"$context.error.responseType","detail":$context.error.messageString}';

/**
 * The API: a REST API whose every method requires IAM (SigV4) authorization, in front of one
 * Lambda running the same Hono app as the embedded server (a proxy integration: the app routes
 * `/apis/cfs/...` and `/apis/ims/...` itself). A request validator checks what the gateway can
 * know (the proxy path parameter); request bodies are checked by the app's own schemas, which
 * name the offending field. Access logs in JSON, stage throttling, and gateway errors (a missing
 * or bad signature, throttling) answered as problem+json too.
 */
export class CfsApi extends Construct {
  readonly api: apigw.RestApi;

  constructor(scope: Construct, id: string, props: CfsApiProps) {
    super(scope, id);
    const accessLogs = new logs.LogGroup(this, 'AccessLogs', { retention: props.logRetention, removalPolicy: RemovalPolicy.DESTROY });
    this.api = new apigw.RestApi(this, 'Api', {
      description: 'CFS image customization (CFS v2/v3 and IMS v3 paths), IAM authorization',
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
    acknowledge(this.api, 'AwsSolutions-COG4', 'The API is for operators and their tools, which sign requests with their IAM credentials (SigV4), as the CLI does; IAM authorization is on every method.');
    const validator = this.api.addRequestValidator('Validator', { validateRequestParameters: true, validateRequestBody: true });
    const integration = new apigw.LambdaIntegration(props.handler, { proxy: true });
    const options: apigw.MethodOptions = { authorizationType: apigw.AuthorizationType.IAM, requestValidator: validator };
    this.api.root.addMethod('ANY', integration, options);
    this.api.root
      .addResource('{proxy+}')
      .addMethod('ANY', integration, { ...options, requestParameters: { 'method.request.path.proxy': true } });

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
