import { DescribeTasksCommand, ListTasksCommand, StopTaskCommand, type ECSClient } from '@aws-sdk/client-ecs';

/** The container override RunAnsible sets (statemachines/image-customization.asl.json): it names the session. */
const SESSION_VARIABLE = 'SESSION_NAME';
/** DescribeTasks takes at most this many tasks per call. */
const DESCRIBE_BATCH = 100;

/**
 * The runner tasks of a session on the runner cluster. StopExecution ends a `.sync` task state
 * without waiting for the task, so the cancellation clean-up looks the session's tasks up here
 * (by the SESSION_NAME override RunAnsible gives every runner task) and stops them.
 */
export class EcsRunnerTasks {
  constructor(
    private readonly client: ECSClient,
    private readonly cluster: string,
  ) {}

  /** ARNs of the running (or starting) tasks whose runner container works for `session`. */
  async tasksOf(session: string): Promise<string[]> {
    const arns: string[] = [];
    let nextToken: string | undefined;
    do {
      const page = await this.client.send(new ListTasksCommand({ cluster: this.cluster, desiredStatus: 'RUNNING', nextToken }));
      arns.push(...(page.taskArns ?? []));
      nextToken = page.nextToken;
    } while (nextToken);
    const matching: string[] = [];
    for (let i = 0; i < arns.length; i += DESCRIBE_BATCH) {
      const out = await this.client.send(new DescribeTasksCommand({ cluster: this.cluster, tasks: arns.slice(i, i + DESCRIBE_BATCH) }));
      for (const task of out.tasks ?? []) {
        const names = (task.overrides?.containerOverrides ?? []).flatMap((c) => c.environment ?? []).filter((e) => e.name === SESSION_VARIABLE);
        if (task.taskArn && names.some((e) => e.value === session)) matching.push(task.taskArn);
      }
    }
    return matching;
  }

  /** Stops every runner task of the session; returns the ARNs it stopped. */
  async stopSession(session: string, reason: string): Promise<string[]> {
    const tasks = await this.tasksOf(session);
    for (const task of tasks) {
      // ECS limits the reason to 255 characters.
      await this.client.send(new StopTaskCommand({ cluster: this.cluster, task, reason: reason.slice(0, 255) }));
    }
    return tasks;
  }
}
