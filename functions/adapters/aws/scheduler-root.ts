import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { awsRoot, type AwsRoot } from './index.ts';

/**
 * Part of the AWS composition root (index.ts) in a module of its own: the root of the API
 * function, the only one that arms and disarms automation schedules, with the EventBridge
 * Scheduler client. Only the API bundle imports this module, so only it carries that client.
 */
export function awsRootWithSchedules(): AwsRoot {
  return awsRoot({ scheduler: () => new SchedulerClient({}) });
}
