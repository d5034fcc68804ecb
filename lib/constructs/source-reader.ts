import { ArnFormat, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { AWS_ENV } from '../../functions/adapters/aws/environment.ts';
import { acknowledge } from '../nag.ts';
import { sourceSecretPrefix } from './api-function.ts';

export interface SourceReaderProps {
  /** RenderInventory: the one function that may assume the role (and is told its ARN). */
  issuer: lambda.Function;
}

/**
 * Per-session access to CFS sources' secrets for runner tasks. ECS gives every task of the
 * runner's task definition the same role, so that role gets no Secrets Manager and no STS
 * permission at all; instead RenderInventory assumes this role, which may read any secret under
 * the stack's sources' prefix, with a session policy naming only the session's own secrets, and
 * leaves those one-hour credentials under the session's runner prefix.
 */
export class SourceReader extends Construct {
  readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: SourceReaderProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const issuerRole = props.issuer.role;
    if (!issuerRole) throw new Error('the source access issuer has no role');
    const secretArn = (name: string) => stack.formatArn({ service: 'secretsmanager', resource: 'secret', resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    const secretArns = secretArn(`${sourceSecretPrefix(stack)}*`);
    this.role = new iam.Role(this, 'Role', {
      // Only RenderInventory's role, in this account; role chaining caps its sessions at one hour (the default maximum).
      assumedBy: new iam.PrincipalWithConditions(new iam.ArnPrincipal(issuerRole.roleArn), { StringEquals: { 'aws:PrincipalAccount': stack.account } }),
      description: "CFS sources: reads sources' secrets; assumed by RenderInventory with a session policy narrowing it to one session's",
    });
    this.role.addToPolicy(new iam.PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [secretArns] }));
    acknowledge(
      this.role,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:${sourceSecretPrefix(stack)}*]`,
      "Sources' secrets are created at run time under the stack's prefix; each assumption narrows this to one session's secrets with a session policy.",
    );
    issuerRole.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['sts:AssumeRole'], resources: [this.role.roleArn] }));
    props.issuer.addEnvironment(AWS_ENV.SOURCE_READER_ROLE_ARN, this.role.roleArn);
    // The session policy names each secret's ARN: the prefix's ARN without the wildcard.
    props.issuer.addEnvironment(AWS_ENV.SOURCE_SECRET_ARN_PREFIX, secretArn(sourceSecretPrefix(stack)));
  }
}
