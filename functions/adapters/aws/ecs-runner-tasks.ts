import { DescribeTasksCommand, ListTasksCommand, StopTaskCommand, type ECSClient, type Task } from '@aws-sdk/client-ecs';

/** The container override RunAnsible sets (statemachines/image-customization.asl.json): it names the session. */
const SESSION_VARIABLE = 'SESSION_NAME';
/** DescribeTasks takes at most this many tasks per call. */
const DESCRIBE_BATCH = 100;

/**
 * How long a stopped task may take to reach STOPPED: the runner container's stop timeout
 * (lib/constructs/runner-task.ts: 120 s, after which ECS kills it) and a margin, inside the
 * clean-up function's 5 minutes.
 */
export const DEFAULT_STOP_WAIT_MS = 150_000;

/**
 * The runner tasks of a session on the runner cluster. StopExecution ends a `.sync` task state
 * without waiting for the task, so the cancellation clean-up looks the session's tasks up here
 * (by the SESSION_NAME override RunAnsible gives every runner task) and stops them.
 */
export class EcsRunnerTasks {
  constructor(
    private readonly client: ECSClient,
    private readonly cluster: string,
    private readonly timing: { pollMs: number; stopWaitMs: number } = { pollMs: 2_000, stopWaitMs: DEFAULT_STOP_WAIT_MS },
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
    for (const task of await this.describe(arns)) {
      const names = (task.overrides?.containerOverrides ?? []).flatMap((c) => c.environment ?? []).filter((e) => e.name === SESSION_VARIABLE);
      if (task.taskArn && names.some((e) => e.value === session)) matching.push(task.taskArn);
    }
    return matching;
  }

  /** The tasks `arns` name, as DescribeTasks tells them (in batches of its limit); tasks ECS no longer knows are left out. */
  private async describe(arns: string[]): Promise<Task[]> {
    const tasks: Task[] = [];
    for (let i = 0; i < arns.length; i += DESCRIBE_BATCH) {
      const out = await this.client.send(new DescribeTasksCommand({ cluster: this.cluster, tasks: arns.slice(i, i + DESCRIBE_BATCH) }));
      tasks.push(...(out.tasks ?? []));
    }
    return tasks;
  }

  /**
   * Stops every runner task of the session and waits until each has STOPPED; returns the ARNs it
   * stopped. StopTask only sends SIGTERM: the runner then stops Ansible and writes its last log,
   * progress and outcome, so whatever removes the session's objects must come after that. A task
   * still not stopped after `stopWaitMs` is an error, so the clean-up is retried (it is idempotent).
   */
  async stopSession(session: string, reason: string): Promise<string[]> {
    const tasks = await this.tasksOf(session);
    for (const task of tasks) {
      // ECS limits the reason to 255 characters.
      await this.client.send(new StopTaskCommand({ cluster: this.cluster, task, reason: reason.slice(0, 255) }));
    }
    await this.untilStopped(tasks);
    return tasks;
  }

  private async untilStopped(tasks: string[]): Promise<void> {
    const deadline = Date.now() + this.timing.stopWaitMs;
    let running = tasks;
    while (running.length > 0) {
      running = (await this.describe(running)).flatMap((task) => (task.taskArn && task.lastStatus !== 'STOPPED' ? [task.taskArn] : []));
      if (running.length === 0) return;
      if (Date.now() >= deadline) {
        throw new Error(`runner task(s) ${running.join(', ')} did not stop within ${Math.round(this.timing.stopWaitMs / 1000)} s of StopTask; the clean-up will be retried`);
      }
      await new Promise((resolve) => setTimeout(resolve, this.timing.pollMs));
    }
  }
}
