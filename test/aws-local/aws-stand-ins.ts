import { type ChildProcess, fork, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StateMachine } from 'aws-local-stepfunctions';
import { timeoutPathsOnParameters } from '../../functions/adapters/local/asl-definition.ts';
import { ACCOUNT, REGION, type DeployedShape, type TemplateFunction } from './template.ts';

const BOOTSTRAP = fileURLToPath(new URL('./lambda-bootstrap.mjs', import.meta.url));

/** The credentials every stand-in process gets (Lambda and ECS put a role's keys in the environment). */
// The S3-protocol server (s3rver) knows only its own key, and checks presigned URLs with it.
export const LOCAL_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** Docker's default capability set, which Fargate grants a task (adding only SYS_PTRACE is allowed there). */
export const FARGATE_DEFAULT_CAPABILITIES = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'NET_BIND_SERVICE', 'NET_RAW', 'SYS_CHROOT', 'MKNOD', 'AUDIT_WRITE', 'SETFCAP'];

/** An error as an AWS service names it: the name is what the SDK (and Step Functions) sees. */
export class AwsError extends Error {
  constructor(
    name: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = name;
  }
}

/** A Task state's failure as Step Functions records it: the error name and its cause. */
class StatesError extends Error {
  constructor(name: string, cause: string) {
    super(cause);
    this.name = name;
  }
}

export interface Invocation {
  functionName: string;
  /** `RequestResponse` (Step Functions, API Gateway) or `Event` (EventBridge, Scheduler). */
  type: 'RequestResponse' | 'Event';
  source: string;
  event: unknown;
  /** Date.now() when the invocation began. */
  startedAt: number;
  result?: unknown;
  error?: { errorType: string; errorMessage: string };
  logs: string;
}

export interface RunnerTask {
  taskArn: string;
  session: string | undefined;
  environment: Record<string, string>;
  /** `container` under Fargate's capability set, `privileged` with the host's. */
  capabilities: 'fargate-default' | 'privileged';
  lastStatus: 'RUNNING' | 'STOPPED';
  desiredStatus: 'RUNNING' | 'STOPPED';
  exitCode?: number | null;
  signal?: string | null;
  stoppedReason?: string;
  output: string;
  stopped: Promise<void>;
  overrides: { containerOverrides: { name: string; environment: { name: string; value: string }[] }[] };
  process: ChildProcess;
}

export interface ExecutionRecord {
  arn: string;
  name: string;
  input: string;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED' | 'TIMED_OUT';
  error?: string;
  cause?: string;
  startDate: Date;
  stopDate?: Date;
  /** Every state entered, in order (Map iterations included). */
  states: string[];
  done: Promise<void>;
  abort(): void;
}

interface OpenToken {
  executionArn: string;
  resolve(output: unknown): void;
  reject(error: Error): void;
}

type State = { Type: string; Resource?: string; TimeoutSeconds?: number; Parameters?: unknown; TimeoutSecondsPath?: string; ItemProcessor?: { States: Record<string, State> }; Iterator?: { States: Record<string, State> } };

/** Every Task state of the definition (Map iterations included). */
function taskStates(states: Record<string, State>, found = new Map<string, State>()): Map<string, State> {
  for (const [name, state] of Object.entries(states)) {
    const inner = state.ItemProcessor ?? state.Iterator;
    if (inner) taskStates(inner.States, found);
    if (state.Type === 'Task') found.set(name, state);
  }
  return found;
}

/** The value at a simple JSONPath (`$.a.b`) of `input`. */
function valueAt(input: unknown, path: string): unknown {
  return path
    .replace(/^\$\.?/, '')
    .split('.')
    .filter(Boolean)
    .reduce<unknown>((value, key) => (typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined), input);
}

/** Does an EventBridge pattern match the event? Literal value lists and nested objects, as the template's rules use. */
export function matchesPattern(pattern: unknown, value: unknown): boolean {
  if (Array.isArray(pattern)) {
    const values = Array.isArray(value) ? value : [value];
    return pattern.some((p) => {
      if (typeof p === 'object' && p !== null) throw new Error(`the stand-in does not match content filters such as ${JSON.stringify(p)}`);
      return values.includes(p);
    });
  }
  if (typeof pattern !== 'object' || pattern === null) throw new Error(`an event pattern leaf must be a list, not ${JSON.stringify(pattern)}`);
  if (typeof value !== 'object' || value === null) return false;
  return Object.entries(pattern).every(([key, inner]) => matchesPattern(inner, (value as Record<string, unknown>)[key]));
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export interface AwsStandInsOptions {
  shape: DeployedShape;
  /** Service endpoints the functions and the runner reach (AWS_ENDPOINT_URL_<SERVICE>), e.g. dynalite's and the S3 server's. */
  endpoints: Record<string, string>;
  /** More environment for every process (a CA bundle for the git server, ...). */
  extraEnvironment?: Record<string, string>;
  /** The runner's entry point (dist/runner-image/runner.mjs) and the image's own ENV lines. */
  runner: { entryPoint: string; imageEnvironment: Record<string, string> };
}

/**
 * The AWS services the deployed functions and the state machine call, stood in for on one
 * machine: Lambda (each invocation a process running the function's staged bundle), Step
 * Functions (the template's definition on aws-local-stepfunctions, task tokens, executions and
 * their status-change events), EventBridge (the template's rules), ECS (RunTask starts the
 * runner's entry point, StopTask signals it), and Scheduler (calls recorded). One HTTP endpoint
 * serves the JSON protocols of states, events, ecs and scheduler.
 */
export class AwsStandIns {
  readonly invocations: Invocation[] = [];
  readonly events: Record<string, unknown>[] = [];
  readonly schedulerCalls: { operation: string; name: string; body: unknown }[] = [];
  readonly schedules = new Map<string, unknown>();
  readonly executions = new Map<string, ExecutionRecord>();
  readonly tasks = new Map<string, RunnerTask>();
  private readonly tokens = new Map<string, OpenToken>();
  private readonly closedTokens = new Set<string>();
  private readonly functionsByArn = new Map<string, TemplateFunction>();
  private readonly pendingAsync = new Set<Promise<void>>();
  private readonly workDir = mkdtempSync(join(tmpdir(), 'cfs-aws-local-'));
  private server: Server | undefined;
  url = '';

  constructor(private readonly options: AwsStandInsOptions) {
    for (const fn of options.shape.functions) {
      this.functionsByArn.set(fn.arn, fn);
      this.functionsByArn.set(fn.name, fn);
    }
  }

  async start(): Promise<void> {
    this.server = createServer((request, response) => void this.serve(request, response));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const execution of this.executions.values()) if (execution.status === 'RUNNING') execution.abort();
    for (const task of this.tasks.values()) if (task.lastStatus === 'RUNNING') this.stopTask(task.taskArn, 'the stand-ins closed', 0);
    await Promise.all([...this.tasks.values()].map((t) => t.stopped));
    await Promise.allSettled([...this.pendingAsync]);
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    rmSync(this.workDir, { recursive: true, force: true });
  }

  /** Every async invocation started so far has ended. */
  async settled(): Promise<void> {
    while (this.pendingAsync.size > 0) await Promise.allSettled([...this.pendingAsync]);
  }

  /** The environment Lambda gives a function: the template's variables, the runtime's own, and the stand-ins' endpoints. */
  functionEnvironment(fn: TemplateFunction): Record<string, string> {
    return {
      PATH: '/var/lang/bin:/usr/local/bin:/usr/bin:/bin',
      LANG: 'en_US.UTF-8',
      TZ: ':UTC',
      AWS_REGION: REGION,
      AWS_DEFAULT_REGION: REGION,
      AWS_LAMBDA_FUNCTION_NAME: fn.name,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memorySize),
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
      LAMBDA_TASK_ROOT: fn.codeDir,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_SESSION_TOKEN: 'aws-local-session',
      ...this.endpointEnvironment(),
      ...this.options.extraEnvironment,
      ...fn.environment,
    };
  }

  private endpointEnvironment(): Record<string, string> {
    const env: Record<string, string> = {
      AWS_ENDPOINT_URL_SFN: this.url,
      AWS_ENDPOINT_URL_EVENTBRIDGE: this.url,
      AWS_ENDPOINT_URL_SCHEDULER: this.url,
      AWS_ENDPOINT_URL_ECS: this.url,
      // The S3-protocol server predates the SDK's default CRC checksums.
      AWS_REQUEST_CHECKSUM_CALCULATION: 'when_required',
      AWS_RESPONSE_CHECKSUM_VALIDATION: 'when_required',
    };
    for (const [service, endpoint] of Object.entries(this.options.endpoints)) env[`AWS_ENDPOINT_URL_${service.toUpperCase()}`] = endpoint;
    return env;
  }

  /**
   * Invokes a function by ARN or name, in a process of its own with the function's environment
   * and timeout; resolves with its result, or rejects with Lambda's error shape as the error
   * (name = errorType). An unknown function is Lambda's ResourceNotFoundException.
   */
  async invoke(functionName: string, event: unknown, source = 'test', type: Invocation['type'] = 'RequestResponse'): Promise<unknown> {
    const fn = this.functionsByArn.get(functionName);
    if (!fn) throw new AwsError('ResourceNotFoundException', `Function not found: ${functionName}`, 404);
    const record: Invocation = { functionName: fn.name, type, source, event, startedAt: Date.now(), logs: '' };
    this.invocations.push(record);
    const requestId = randomUUID();
    const child = fork(BOOTSTRAP, [fn.codeDir, fn.handler, fn.name, fn.arn, String(fn.memorySize), String(fn.timeoutSeconds), requestId], {
      env: this.functionEnvironment(fn),
      execPath: process.execPath,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
    });
    child.stdout!.on('data', (chunk: Buffer) => (record.logs += chunk.toString('utf8')));
    child.stderr!.on('data', (chunk: Buffer) => (record.logs += chunk.toString('utf8')));
    const outcome = await new Promise<{ ok: boolean; payload: unknown }>((resolve) => {
      let answered = false;
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        answered = true;
        resolve({ ok: false, payload: { errorType: 'Sandbox.Timedout', errorMessage: `Task timed out after ${fn.timeoutSeconds.toFixed(2)} seconds` } });
      }, fn.timeoutSeconds * 1000);
      child.once('message', (message: { ok: boolean; payload: unknown }) => {
        answered = true;
        clearTimeout(timer);
        resolve(message);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (!answered) resolve({ ok: false, payload: { errorType: 'Runtime.ExitError', errorMessage: `RequestId: ${requestId} Error: Runtime exited with error: ${signal ? `signal: ${signal}` : `exit status ${code}`}` } });
      });
      child.send(event as object);
    });
    await new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
    if (outcome.ok) {
      record.result = outcome.payload;
      return outcome.payload;
    }
    const shape = outcome.payload as { errorType: string; errorMessage: string };
    record.error = { errorType: shape.errorType, errorMessage: shape.errorMessage };
    throw new StatesError(shape.errorType, JSON.stringify(shape));
  }

  /** An asynchronous invocation (EventBridge, Scheduler): accepted at once, its outcome recorded. */
  invokeAsync(functionName: string, event: unknown, source: string): void {
    const pending = this.invoke(functionName, event, source, 'Event').then(
      () => undefined,
      () => undefined,
    );
    this.pendingAsync.add(pending);
    void pending.finally(() => this.pendingAsync.delete(pending));
  }

  // ---- EventBridge ----

  /** Puts an event on a bus and sends it to every matching rule's targets, as EventBridge does. */
  putEvent(busName: string, event: { source: string; 'detail-type': string; detail: unknown; resources?: string[]; time?: string }): string {
    const bus = busName.includes(':event-bus/') ? busName.split(':event-bus/')[1]! : busName;
    if (bus !== 'default' && bus !== this.options.shape.busName) throw new AwsError('ResourceNotFoundException', `Event bus ${busName} does not exist.`);
    const id = randomUUID();
    const full = { version: '0', id, account: ACCOUNT, region: REGION, time: event.time ?? new Date().toISOString(), resources: event.resources ?? [], ...event };
    this.events.push({ bus, ...full });
    for (const rule of this.options.shape.rules) {
      if (rule.busName !== bus || !matchesPattern(rule.pattern, full)) continue;
      for (const target of rule.targets) this.invokeAsync(target.arn, target.input ? JSON.parse(target.input) : full, `rule ${rule.logicalId}`);
    }
    return id;
  }

  // ---- Step Functions ----

  startExecution(stateMachineArn: string, name: string, input: string): ExecutionRecord {
    if (stateMachineArn !== this.options.shape.stateMachineArn) throw new AwsError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${stateMachineArn}'`);
    const arn = `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;
    const existing = this.executions.get(arn);
    if (existing) {
      if (existing.status === 'RUNNING' && existing.input === input) return existing;
      throw new AwsError('ExecutionAlreadyExists', `Execution Already Exists: '${arn}'`);
    }
    const definition = structuredClone(this.options.shape.definition) as { States: Record<string, State> };
    // aws-local-stepfunctions's one deviation made up for, as the embedded engine does.
    timeoutPathsOnParameters(definition.States);
    const tasks = taskStates(definition.States);
    const context = { Execution: { Id: arn, Name: name, Input: JSON.parse(input) as unknown, StartTime: new Date().toISOString() }, StateMachine: { Id: stateMachineArn }, Task: { Token: '' } };
    const newToken = () => (context.Task.Token = `${randomUUID()}.${Buffer.from(arn).toString('base64url')}`);
    newToken();
    const handlers: Record<string, (input: unknown) => Promise<unknown>> = {};
    for (const [stateName, state] of tasks) handlers[stateName] = (stateInput) => this.runTaskState(arn, stateName, state, stateInput, context.Task.Token, newToken);
    const machine = new StateMachine(definition as never, { validationOptions: { checkPaths: true, checkArn: true } });
    const run = machine.run(JSON.parse(input) as never, { context: context as never, overrides: { taskResourceLocalHandlers: handlers as never } });
    const record: ExecutionRecord = { arn, name, input, status: 'RUNNING', startDate: new Date(), states: [], done: Promise.resolve(), abort: () => run.abort() };
    this.executions.set(arn, record);
    void (async () => {
      for await (const event of run.eventLogs) if (event.type === 'StateEntered') record.states.push(event.state.name);
    })().catch(() => {});
    record.done = run.result.then(
      () => this.endExecution(record, 'SUCCEEDED'),
      (error: Error) => {
        if (error.name === 'ExecutionAbortedError' || /aborted/i.test(error.message)) return this.endExecution(record, 'ABORTED', record.error, record.cause);
        if (error.name === 'ExecutionTimeoutError') return this.endExecution(record, 'TIMED_OUT');
        const cause = (error.cause as Error | undefined) ?? error;
        return this.endExecution(record, 'FAILED', cause.name, cause.message);
      },
    );
    return record;
  }

  stopExecution(executionArn: string, error?: string, cause?: string): Date {
    const record = this.executions.get(executionArn);
    if (!record) throw new AwsError('ExecutionDoesNotExist', `Execution Does Not Exist: '${executionArn}'`);
    if (record.status === 'RUNNING') {
      record.error = error;
      record.cause = cause;
      record.abort();
    }
    return new Date();
  }

  /** The execution's end: its open task tokens close, and the status change goes to the default bus. */
  private endExecution(record: ExecutionRecord, status: ExecutionRecord['status'], error?: string, cause?: string): void {
    if (record.status !== 'RUNNING') return;
    record.status = status;
    record.stopDate = new Date();
    record.error = error;
    record.cause = cause;
    for (const [token, open] of this.tokens) {
      if (open.executionArn !== record.arn) continue;
      this.tokens.delete(token);
      this.closedTokens.add(token);
    }
    this.putEvent('default', {
      source: 'aws.states',
      'detail-type': 'Step Functions Execution Status Change',
      resources: [record.arn],
      detail: {
        executionArn: record.arn,
        stateMachineArn: this.options.shape.stateMachineArn,
        name: record.name,
        status,
        startDate: record.startDate.getTime(),
        stopDate: record.stopDate.getTime(),
        input: record.input,
        output: null,
        inputDetails: { included: true },
        outputDetails: null,
        error: error ?? null,
        cause: cause ?? null,
      },
    });
  }

  private async runTaskState(executionArn: string, stateName: string, state: State, input: unknown, token: string, newToken: () => void): Promise<unknown> {
    const resource = state.Resource ?? '';
    // Lambda's own errors reach the state as `Lambda.<name>`; a function's throw by its errorType.
    const invoke = (name: string, payload: unknown) =>
      this.invoke(name, payload, `${stateName} (Step Functions)`).catch((error: Error) => {
        throw error instanceof AwsError ? new StatesError(`Lambda.${error.name}`, error.message) : error;
      });
    if (resource.startsWith('arn:aws:lambda:')) return invoke(resource, input);
    if (resource === 'arn:aws:states:::lambda:invoke.waitForTaskToken') {
      const { FunctionName, Payload } = input as { FunctionName: string; Payload: unknown };
      const timeoutSeconds = state.TimeoutSeconds ?? (state.TimeoutSecondsPath ? Number(valueAt(input, state.TimeoutSecondsPath)) : 99_999_999);
      let timer: NodeJS.Timeout | undefined;
      const woken = new Promise<unknown>((resolve, reject) => {
        this.tokens.set(token, { executionArn, resolve, reject });
        timer = setTimeout(() => reject(new StatesError('States.Timeout', 'the task token was not returned in time')), timeoutSeconds * 1000);
      });
      void woken.catch(() => {});
      try {
        await invoke(FunctionName, Payload);
        return await woken;
      } finally {
        clearTimeout(timer);
        // Whichever way the state ended, its token is spent: a late SendTaskSuccess is TaskTimedOut.
        if (this.tokens.delete(token)) this.closedTokens.add(token);
        newToken();
      }
    }
    if (resource === 'arn:aws:states:::ecs:runTask.sync') return this.runTaskSync(input as RunTaskParameters);
    throw new StatesError('States.Runtime', `the stand-in does not serve the resource ${resource} (state ${stateName})`);
  }

  /** SendTaskSuccess/SendTaskFailure: an open token ends its state; a closed one is TaskTimedOut, a made-up one InvalidToken. */
  sendTaskResult(token: string, result: { output?: string; error?: string; cause?: string }): void {
    const open = this.tokens.get(token);
    if (!open) {
      if (this.closedTokens.has(token) || this.isOurToken(token)) throw new AwsError('TaskTimedOut', 'Task Timed Out');
      throw new AwsError('InvalidToken', 'Invalid token');
    }
    this.tokens.delete(token);
    this.closedTokens.add(token);
    if (result.output !== undefined) open.resolve(JSON.parse(result.output));
    else open.reject(new StatesError(result.error ?? '', result.cause ?? ''));
  }

  private isOurToken(token: string): boolean {
    const arn = Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8');
    return this.executions.has(arn);
  }

  /** The open task tokens (one per waiting state). */
  openTokens(): string[] {
    return [...this.tokens.keys()];
  }

  // ---- ECS ----

  private async runTaskSync(parameters: RunTaskParameters): Promise<unknown> {
    const shape = this.options.shape;
    if (parameters.Cluster !== shape.clusterArn) throw new StatesError('ECS.ClusterNotFoundException', `Cluster not found: ${parameters.Cluster}`);
    if (parameters.TaskDefinition !== shape.taskDefinition.arn) throw new StatesError('ECS.ClientException', `Unable to describe task definition ${parameters.TaskDefinition}`);
    const fargate = parameters.LaunchType === 'FARGATE';
    if (fargate && !shape.taskDefinition.requiresCompatibilities.includes('FARGATE')) throw new StatesError('ECS.InvalidParameterException', 'Task definition does not support launch_type FARGATE.');
    if (!fargate && !parameters.CapacityProviderStrategy) throw new StatesError('ECS.InvalidParameterException', 'neither a launch type nor a capacity provider strategy');
    const environment: Record<string, string> = { ...shape.taskDefinition.environment };
    const containerOverrides: RunnerTask['overrides']['containerOverrides'] = [];
    for (const override of parameters.Overrides?.ContainerOverrides ?? []) {
      if (override.Name !== shape.taskDefinition.containerName) throw new StatesError('ECS.InvalidParameterException', `Override for container named ${override.Name} is not a container in the TaskDefinition.`);
      for (const variable of override.Environment ?? []) environment[variable.Name] = variable.Value;
      containerOverrides.push({ name: override.Name, environment: (override.Environment ?? []).map((v) => ({ name: v.Name, value: v.Value })) });
    }
    const task = this.startRunner(environment, fargate && !shape.taskDefinition.privileged ? 'fargate-default' : 'privileged', { containerOverrides });
    await task.stopped;
    const described = {
      TaskArn: task.taskArn,
      ClusterArn: shape.clusterArn,
      TaskDefinitionArn: shape.taskDefinition.arn,
      LastStatus: 'STOPPED',
      StopCode: task.stoppedReason ? 'UserInitiated' : 'EssentialContainerExited',
      StoppedReason: task.stoppedReason ?? 'Essential container in task exited',
      Containers: [{ Name: shape.taskDefinition.containerName, ExitCode: task.exitCode ?? undefined, LastStatus: 'STOPPED' }],
    };
    // As Step Functions maps a `.sync` task: any container exiting non-zero fails the state.
    if (task.exitCode !== 0) throw new StatesError('States.TaskFailed', JSON.stringify(described));
    return described;
  }

  /**
   * Starts the runner's entry point as the container would: the image's ENV, the task
   * definition's environment, the overrides; under Fargate, only Docker's default capabilities
   * (setpriv drops the rest from the bounding set before node starts, as root in a container has).
   */
  private startRunner(environment: Record<string, string>, capabilities: RunnerTask['capabilities'], overrides: RunnerTask['overrides']): RunnerTask {
    const taskArn = `arn:aws:ecs:${REGION}:${ACCOUNT}:task/${this.options.shape.clusterArn.split('/').pop()}/${randomUUID().replaceAll('-', '')}`;
    const containerRoot = mkdtempSync(join(this.workDir, 'task-'));
    const env: Record<string, string> = {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: '/root',
      ...this.options.runner.imageEnvironment,
      ...environment,
      // The image's fixed workspace path, one per task here (each task has a filesystem of its own in ECS).
      RUNNER_WORKSPACE: join(containerRoot, 'workspace'),
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_DEFAULT_REGION: environment.AWS_REGION ?? REGION,
      ...this.endpointEnvironment(),
      ...this.options.extraEnvironment,
    };
    const node = [process.execPath, this.options.runner.entryPoint];
    const bounding = capabilities === 'fargate-default' ? `-all,${FARGATE_DEFAULT_CAPABILITIES.map((c) => `+${c.toLowerCase()}`).join(',')}` : undefined;
    const [command, ...args] = bounding ? ['setpriv', `--bounding-set=${bounding}`, `--inh-caps=-all`, '--', ...node] : node;
    const child = spawn(command!, args, { env, cwd: containerRoot, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const task: RunnerTask = {
      taskArn,
      session: environment.SESSION_NAME,
      environment: env,
      capabilities,
      lastStatus: 'RUNNING',
      desiredStatus: 'RUNNING',
      output: '',
      overrides,
      process: child,
      stopped: Promise.resolve(),
    };
    child.stdout!.on('data', (chunk: Buffer) => (task.output += chunk.toString('utf8')));
    child.stderr!.on('data', (chunk: Buffer) => (task.output += chunk.toString('utf8')));
    task.stopped = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        task.exitCode = code ?? (signal ? 128 + (signal === 'SIGKILL' ? 9 : 15) : null);
        task.signal = signal;
        task.lastStatus = 'STOPPED';
        task.desiredStatus = 'STOPPED';
        rmSync(containerRoot, { recursive: true, force: true });
        resolve();
      });
    });
    this.tasks.set(taskArn, task);
    return task;
  }

  /** StopTask: SIGTERM to the container's processes, SIGKILL after the container's stop timeout. */
  stopTask(taskArn: string, reason: string, graceSeconds = this.options.shape.taskDefinition.stopTimeoutSeconds): RunnerTask {
    const task = this.tasks.get(taskArn);
    if (!task) throw new AwsError('InvalidParameterException', `The referenced task was not found.`);
    if (task.lastStatus === 'RUNNING' && task.desiredStatus === 'RUNNING') {
      task.desiredStatus = 'STOPPED';
      task.stoppedReason = reason;
      const group = -task.process.pid!;
      try {
        process.kill(group, 'SIGTERM');
      } catch {
        // already gone
      }
      const timer = setTimeout(() => {
        try {
          process.kill(group, 'SIGKILL');
        } catch {
          // already gone
        }
      }, graceSeconds * 1000);
      void task.stopped.then(() => clearTimeout(timer));
    }
    return task;
  }

  private describeTask(task: RunnerTask) {
    return {
      taskArn: task.taskArn,
      clusterArn: this.options.shape.clusterArn,
      taskDefinitionArn: this.options.shape.taskDefinition.arn,
      lastStatus: task.lastStatus,
      desiredStatus: task.desiredStatus,
      overrides: task.overrides,
      ...(task.stoppedReason ? { stoppedReason: task.stoppedReason } : {}),
      containers: [{ name: this.options.shape.taskDefinition.containerName, lastStatus: task.lastStatus, ...(task.exitCode !== undefined ? { exitCode: task.exitCode } : {}) }],
    };
  }

  // ---- the HTTP endpoint ----

  private async serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      response.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', ...headers });
      response.end(JSON.stringify(body));
    };
    try {
      const text = await readBody(request);
      const target = String(request.headers['x-amz-target'] ?? '');
      const body = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
      if (target) return answer(200, this.jsonOperation(target, body));
      return answer(200, this.schedulerOperation(request.method ?? 'GET', new URL(request.url ?? '/', this.url), body));
    } catch (error) {
      const e = error as Error & { status?: number };
      const name = error instanceof AwsError ? e.name : 'InternalFailure';
      answer(error instanceof AwsError ? e.status! : 500, { __type: name, message: e.message, Message: e.message }, { 'x-amzn-errortype': name });
    }
  }

  private jsonOperation(target: string, body: Record<string, unknown>): unknown {
    const [service, operation] = target.split('.') as [string, string];
    if (service === 'AWSStepFunctions') {
      switch (operation) {
        case 'StartExecution': {
          const record = this.startExecution(body.stateMachineArn as string, (body.name as string | undefined) ?? randomUUID(), (body.input as string | undefined) ?? '{}');
          return { executionArn: record.arn, startDate: record.startDate.getTime() / 1000 };
        }
        case 'DescribeStateMachine': {
          // The API's health check (SfnWorkflowStarter.checkHealth): the one machine, always ACTIVE here.
          if (body.stateMachineArn !== this.options.shape.stateMachineArn) throw new AwsError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${String(body.stateMachineArn)}'`);
          return { stateMachineArn: body.stateMachineArn, name: String(body.stateMachineArn).split(':').pop(), status: 'ACTIVE', definition: '{}', roleArn: '', type: 'STANDARD', creationDate: 0 };
        }
        case 'StopExecution':
          return { stopDate: this.stopExecution(body.executionArn as string, body.error as string | undefined, body.cause as string | undefined).getTime() / 1000 };
        case 'SendTaskSuccess':
          this.sendTaskResult(body.taskToken as string, { output: body.output as string });
          return {};
        case 'SendTaskFailure':
          this.sendTaskResult(body.taskToken as string, { error: body.error as string | undefined, cause: body.cause as string | undefined });
          return {};
        case 'DescribeExecution': {
          const record = this.executions.get(body.executionArn as string);
          if (!record) throw new AwsError('ExecutionDoesNotExist', `Execution Does Not Exist: '${String(body.executionArn)}'`);
          return { executionArn: record.arn, name: record.name, status: record.status, startDate: record.startDate.getTime() / 1000, input: record.input, stateMachineArn: this.options.shape.stateMachineArn };
        }
      }
    }
    if (service === 'AWSEvents' && operation === 'PutEvents') {
      const entries = body.Entries as { Source: string; DetailType: string; Detail: string; EventBusName?: string; Resources?: string[]; Time?: number }[];
      return {
        FailedEntryCount: 0,
        Entries: entries.map((entry) => ({
          EventId: this.putEvent(entry.EventBusName ?? 'default', {
            source: entry.Source,
            'detail-type': entry.DetailType,
            detail: JSON.parse(entry.Detail) as unknown,
            ...(entry.Resources ? { resources: entry.Resources } : {}),
          }),
        })),
      };
    }
    if (service === 'AmazonEC2ContainerServiceV20141113') {
      const cluster = body.cluster as string | undefined;
      if (cluster !== undefined && cluster !== this.options.shape.clusterArn && cluster !== this.options.shape.clusterArn.split('/').pop()) throw new AwsError('ClusterNotFoundException', 'Cluster not found.');
      switch (operation) {
        case 'ListTasks': {
          const desired = (body.desiredStatus as string | undefined) ?? 'RUNNING';
          return { taskArns: [...this.tasks.values()].filter((t) => t.desiredStatus === desired).map((t) => t.taskArn) };
        }
        case 'DescribeTasks':
          return {
            tasks: (body.tasks as string[]).flatMap((arn) => (this.tasks.has(arn) ? [this.describeTask(this.tasks.get(arn)!)] : [])),
            failures: (body.tasks as string[]).filter((arn) => !this.tasks.has(arn)).map((arn) => ({ arn, reason: 'MISSING' })),
          };
        case 'StopTask':
          return { task: this.describeTask(this.stopTask(body.task as string, (body.reason as string | undefined) ?? '')) };
      }
    }
    throw new AwsError('UnknownOperationException', `the stand-in does not serve ${target}`);
  }

  /** EventBridge Scheduler's REST operations on /schedules/{Name}: recorded, kept, answered. */
  private schedulerOperation(method: string, url: URL, body: Record<string, unknown>): unknown {
    const match = /^\/schedules\/([^/]+)$/.exec(url.pathname);
    if (!match) throw new AwsError('UnknownOperationException', `the stand-in does not serve ${method} ${url.pathname}`, 404);
    const name = decodeURIComponent(match[1]!);
    const group = (body.GroupName as string | undefined) ?? url.searchParams.get('groupName') ?? 'default';
    const key = `${group}/${name}`;
    const operation = { POST: 'CreateSchedule', PUT: 'UpdateSchedule', DELETE: 'DeleteSchedule', GET: 'GetSchedule' }[method] ?? method;
    this.schedulerCalls.push({ operation, name: key, body });
    const arn = `arn:aws:scheduler:${REGION}:${ACCOUNT}:schedule/${key}`;
    switch (operation) {
      case 'CreateSchedule':
        if (this.schedules.has(key)) throw new AwsError('ConflictException', `Schedule ${name} already exists.`, 409);
        this.schedules.set(key, body);
        return { ScheduleArn: arn };
      case 'UpdateSchedule':
      case 'DeleteSchedule':
      case 'GetSchedule':
        if (!this.schedules.has(key)) throw new AwsError('ResourceNotFoundException', `Schedule ${name} does not exist.`, 404);
        if (operation === 'UpdateSchedule') this.schedules.set(key, body);
        if (operation === 'DeleteSchedule') this.schedules.delete(key);
        return operation === 'GetSchedule' ? { Arn: arn, Name: name, GroupName: group, ...(this.schedules.get(key) as object) } : operation === 'UpdateSchedule' ? { ScheduleArn: arn } : {};
    }
    throw new AwsError('UnknownOperationException', `the stand-in does not serve ${method} ${url.pathname}`, 404);
  }
}

interface RunTaskParameters {
  LaunchType?: string;
  CapacityProviderStrategy?: unknown;
  Cluster: string;
  TaskDefinition: string;
  Overrides?: { ContainerOverrides?: { Name: string; Environment?: { Name: string; Value: string }[] }[] };
}
