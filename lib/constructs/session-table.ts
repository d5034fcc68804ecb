import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { acknowledge, arnRef } from '../nag.ts';
import { GLOBAL_INDEXES, TABLE_SCHEMA } from '../../functions/adapters/dynamodb/table-schema.ts';

/**
 * The item-level actions the DynamoDB adapters send (functions/adapters/dynamodb and the image
 * wait store): a test compares this list with the commands in their source, so a new command
 * without its grant fails in CI rather than in AWS.
 */
export const TABLE_DATA_ACTIONS = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem', 'dynamodb:Query', 'dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem'] as const;

/**
 * The single table, declared from the same key-schema module the embedded server creates its
 * dynalite table from (functions/adapters/dynamodb/table-schema.ts): on-demand, point-in-time
 * recovery, encrypted with the AWS managed key, deletion protection, the TTL attribute and a
 * stream of old images (session-expiry.ts); kept when the stack is deleted.
 */
export class SessionTable extends Construct {
  readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: TABLE_SCHEMA.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TABLE_SCHEMA.sortKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      deletionProtection: true,
      timeToLiveAttribute: TABLE_SCHEMA.ttlAttribute,
      // What the TTL removes reaches the session-expiry function (old images: the session's job).
      stream: dynamodb.StreamViewType.OLD_IMAGE,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const index of GLOBAL_INDEXES) {
      this.table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.partitionKey, type: dynamodb.AttributeType.STRING },
        sortKey: { name: index.sortKey, type: dynamodb.AttributeType.STRING },
        projectionType: index.projection === 'ALL' ? dynamodb.ProjectionType.ALL : dynamodb.ProjectionType.KEYS_ONLY,
      });
    }
  }

  /** The stores' item actions on the table and its indexes (queries read the indexes). */
  grantData(grantee: iam.IGrantable): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: [...TABLE_DATA_ACTIONS], resources: [this.table.tableArn, `${this.table.tableArn}/index/*`] }),
    );
    acknowledge(
      grantee.grantPrincipal as unknown as Construct,
      `AwsSolutions-IAM5[Resource::${arnRef(this.table)}/index/*]`,
      "The stores query the table's own global secondary indexes (listing, status and age); the grant covers this table's indexes only.",
    );
  }

  /** Only single items on the table itself (the wait step: an image, its wait record). */
  grantItems(grantee: iam.IGrantable, actions: (typeof TABLE_DATA_ACTIONS)[number][]): void {
    grantee.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({ actions, resources: [this.table.tableArn] }));
  }
}
