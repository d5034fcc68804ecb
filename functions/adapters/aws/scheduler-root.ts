import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { awsRoot, type AwsRoot } from './index.ts';

/**
 * Part of the AWS composition root (index.ts) in a module of its own: the root of the API
 * function, the only one that arms and disarms automation schedules, with the EventBridge
 * Scheduler client. Only the API bundle imports this module, so only it carries that client.
 */
export function awsRootWithSchedules(): AwsRoot {
  // And the Secrets Manager client of CFS sources' logins, which only the API keeps.
  return awsRoot({ scheduler: () => new SchedulerClient({}), secretsManager: () => new SecretsManagerClient({}) });
}
