import { CfnElement, Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * Acknowledges one cdk-nag (AwsSolutions) finding on a construct and everything below it, with
 * the reason it is accepted. Findings are acknowledged one by one (cdk-nag v3 has no blanket
 * suppression), so a new wildcard is never hidden by an old acknowledgment.
 */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

/** `<LogicalId.Arn>`: how cdk-nag names a resource's ARN attribute inside a finding. */
export function arnRef(resource: IConstruct): string {
  const element = resource instanceof CfnElement ? resource : resource.node.defaultChild;
  if (!(element instanceof CfnElement)) throw new Error(`${resource.node.path} has no CloudFormation resource`);
  return `<${Stack.of(element).getLogicalId(element)}.Arn>`;
}
