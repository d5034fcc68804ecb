import { ECSClient } from '@aws-sdk/client-ecs';
import { EcsRunnerTasks } from './ecs-runner-tasks.ts';
import { requireSetting, type AwsSettings } from './settings.ts';

let runners: EcsRunnerTasks | undefined;

/**
 * Part of the AWS composition root (index.ts) in a module of its own: the runner tasks on the
 * stack's cluster, which the execution-ended clean-up stops. Only the bundles that import this
 * module carry the ECS client; it is made once per cold start.
 */
export function ecsRunnerTasks(settings: AwsSettings): EcsRunnerTasks {
  return (runners ??= new EcsRunnerTasks(new ECSClient({}), requireSetting(settings, 'runnerCluster')));
}
