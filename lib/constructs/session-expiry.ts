import { Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledge } from '../nag.ts';
import { recordKey } from '../../functions/adapters/dynamodb/table-schema.ts';
import { TTL_PRINCIPAL } from '../../functions/steps/expired-sessions.ts';
import type { ArtifactBucket } from './artifact-bucket.ts';
import { BundledFunction } from './bundled-function.ts';
import type { SessionTable } from './session-table.ts';

export interface SessionExpiryProps {
  environment: Record<string, string>;
  logRetention: logs.RetentionDays;
  table: SessionTable;
  artifacts: ArtifactBucket;
  /** Where a stream batch goes once its retries are spent. */
  failures: sqs.IQueue;
}

/**
 * What `session_ttl` removes in AWS beyond the record: the table's TTL deletes an expired
 * session's item, and its stream (old images) invokes functions/handlers/session-expired.ts,
 * filtered to DynamoDB's own removals of session items, which removes the session's documents,
 * logs and runner prefix, as the embedded retention sweep does. The bucket's 90-day lifecycle
 * rule stays as a backstop.
 */
export class SessionExpiry extends Construct {
  readonly function: BundledFunction;

  constructor(scope: Construct, id: string, props: SessionExpiryProps) {
    super(scope, id);
    this.function = new BundledFunction(this, 'Function', {
      entry: 'session-expired',
      description: "Removal of expired sessions' stored objects (documents, logs, runner prefix)",
      memorySize: 512,
      timeout: Duration.minutes(5),
      environment: props.environment,
      logRetention: props.logRetention,
    });
    const session = recordKey('SESSION', '');
    this.function.function.addEventSource(
      new DynamoEventSource(props.table.table, {
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        batchSize: 25,
        bisectBatchOnError: true,
        retryAttempts: 8,
        onFailure: new SqsDlq(props.failures),
        filters: [
          lambda.FilterCriteria.filter({
            eventName: lambda.FilterRule.isEqual('REMOVE'),
            userIdentity: { type: lambda.FilterRule.isEqual('Service'), principalId: lambda.FilterRule.isEqual(TTL_PRINCIPAL) },
            dynamodb: { OldImage: { pk: { S: lambda.FilterRule.beginsWith(session.pk) }, sk: { S: lambda.FilterRule.isEqual(session.sk) } } },
          }),
        ],
      }),
    );
    acknowledge(
      this.function.role,
      'AwsSolutions-IAM5[Resource::*]',
      "dynamodb:ListStreams, which CDK's DynamoDB event source grants, has no resource type; the stream's own actions name this table's stream.",
    );
    // The record of a newer session of the same name, and the run document naming the expired run's job and runner prefix.
    props.table.grantItems(this.function.function, ['dynamodb:GetItem']);
    props.artifacts.grant(this.function.function, { read: ['sessions', 'runner'], remove: ['sessions', 'runner'] });
  }
}
