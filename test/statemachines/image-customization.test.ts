import { readFileSync } from 'node:fs';
import { StateMachine } from 'aws-local-stepfunctions';
import { describe, expect, it } from 'vitest';
import { aslPlaceholders, localDefinition } from '../../functions/adapters/local/asl-definition.ts';
import { aslPath } from '../../functions/core/workflow/asl-path.ts';
import { DOMAIN_ERROR_NAMES } from '../../functions/core/errors.ts';

type Handler = (input: Record<string, unknown>) => Promise<unknown>;

function namedError(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

/** Fake steps that record what ran; each test overrides the ones whose path it exercises. */
function fakeSteps(overrides: Record<string, Handler> = {}) {
  const calls: string[] = [];
  const record =
    (name: string, result: unknown): Handler =>
    async () => {
      calls.push(name);
      return result;
    };
  const handlers: Record<string, Handler> = {
    ValidateImages: record('ValidateImages', { ready: true, images: ['a', 'b'], missing: [], poll_seconds: 1 }),
    WaitForImages: record('WaitForImages', {}),
    StageImage: record('StageImage', { image_id: 'x' }),
    RenderInventory: record('RenderInventory', { document_key: 'sessions/s/run-document.json', timeout_seconds: 60 }),
    RunAnsible: record('RunAnsible', {}),
    PackageImage: async (input) => {
      calls.push('PackageImage');
      return { image_id: input.image_id, result_id: `r-${String(input.image_id)}` };
    },
    RecordArtifacts: record('RecordArtifacts', {}),
    FailSession: record('FailSession', {}),
    Cleanup: record('Cleanup', {}),
  };
  for (const [name, handler] of Object.entries(overrides)) {
    handlers[name] = async (input) => {
      calls.push(name);
      return handler(input);
    };
  }
  return { handlers, calls };
}

async function run(handlers: Record<string, Handler>) {
  const machine = new StateMachine(localDefinition() as never, { validationOptions: { checkPaths: true, checkArn: true } });
  const execution = machine.run(
    { session: 's' },
    {
      context: { Execution: { Id: 'test', Input: { session: 's' } }, Task: { Token: 'token' } },
      overrides: { taskResourceLocalHandlers: handlers as never, retryIntervalOverrides: { ValidateImages: 0, RenderInventory: 0, StageImage: 0, RecordArtifacts: 0, FailSession: 0, Cleanup: 0, PackageImage: 0 } },
    },
  );
  try {
    return { output: (await execution.result) as Record<string, unknown>, error: undefined };
  } catch (error) {
    // The library wraps the Fail state's error in an ExecutionError; the name AWS reports is the cause's.
    return { output: undefined, error: ((error as Error).cause as Error | undefined) ?? (error as Error) };
  }
}

describe('the image customization state machine', () => {
  it('runs every step in order on the happy path and ends succeeded', async () => {
    // Arrange
    const { handlers, calls } = fakeSteps();
    // Act
    const { output, error } = await run(handlers);
    // Assert
    expect(error).toBeUndefined();
    expect(calls).toEqual(['ValidateImages', 'StageImage', 'StageImage', 'RenderInventory', 'RunAnsible', 'PackageImage', 'PackageImage', 'RecordArtifacts', 'Cleanup']);
    expect(output?.results).toEqual([
      { image_id: 'a', result_id: 'r-a' },
      { image_id: 'b', result_id: 'r-b' },
    ]);
  });

  it('waits for images and validates again until they are ready', async () => {
    // Arrange
    let checks = 0;
    const { handlers, calls } = fakeSteps({
      ValidateImages: async () => {
        checks++;
        return checks < 3 ? { ready: false, images: ['a'], missing: ['a'], poll_seconds: 1 } : { ready: true, images: ['a'], missing: [], poll_seconds: 1 };
      },
    });
    // Act
    const { error } = await run(handlers);
    // Assert
    expect(error).toBeUndefined();
    expect(calls.slice(0, 6)).toEqual(['ValidateImages', 'WaitForImages', 'ValidateImages', 'WaitForImages', 'ValidateImages', 'StageImage']);
  });

  it('ends a wait no event ends after the poll interval ValidateImages gave (its TimeoutSecondsPath) and validates again', async () => {
    // Arrange: as in AWS when no Image Registered event sends the token back.
    let checks = 0;
    const checkedAt: number[] = [];
    const { handlers, calls } = fakeSteps({
      ValidateImages: async () => {
        checks++;
        checkedAt.push(performance.now());
        return checks < 2 ? { ready: false, images: ['a'], missing: ['a'], poll_seconds: 2 } : { ready: true, images: ['a'], missing: [], poll_seconds: 2 };
      },
      WaitForImages: () => new Promise(() => {}),
    });
    // Act
    const { error } = await run(handlers);
    // Assert
    expect(error).toBeUndefined();
    expect(calls.slice(0, 4)).toEqual(['ValidateImages', 'WaitForImages', 'ValidateImages', 'StageImage']);
    const waited = checkedAt[1]! - checkedAt[0]!;
    expect(waited).toBeGreaterThanOrEqual(1_950);
    expect(waited).toBeLessThan(15_000);
  });

  it('passes the wait-for-images task its session, the missing IDs, the poll interval and a task token', async () => {
    // Arrange
    let payload: unknown;
    let first = true;
    const { handlers } = fakeSteps({
      ValidateImages: async () => {
        const ready = !first;
        first = false;
        return { ready, images: ['a'], missing: ready ? [] : ['a'], poll_seconds: 7 };
      },
      WaitForImages: async (input) => {
        payload = input.Payload;
        return {};
      },
    });
    // Act
    await run(handlers);
    // Assert
    expect(payload).toEqual({ session: 's', missing: ['a'], poll_seconds: 7, token: 'token' });
  });

  it('fails the session through FailSession and Cleanup when the image wait times out', async () => {
    // Arrange
    const { handlers, calls } = fakeSteps({
      ValidateImages: async () => {
        throw namedError('ImageWaitTimeoutError', 'image(s) a did not become ready');
      },
    });
    let failInput: unknown;
    handlers.FailSession = async (input) => {
      calls.push('FailSession');
      failInput = input;
      return {};
    };
    // Act
    const { error } = await run(handlers);
    // Assert
    expect(error?.name).toBe('SessionFailed');
    expect(calls).toEqual(['ValidateImages', 'FailSession', 'Cleanup']);
    expect(failInput).toEqual({ session: 's', error: { Error: 'ImageWaitTimeoutError', Cause: 'image(s) a did not become ready' } });
  });

  it.each(['StageImage', 'RenderInventory', 'PackageImage', 'RecordArtifacts'])(
    'routes a domain error in %s to FailSession and then Cleanup',
    async (step) => {
      // Arrange
      const { handlers, calls } = fakeSteps({
        [step]: async () => {
          throw namedError('ValidationError', `${step} refused`);
        },
      });
      // Act
      const { error } = await run(handlers);
      // Assert
      expect(error?.name).toBe('SessionFailed');
      expect(calls.slice(-3)).toEqual([step, 'FailSession', 'Cleanup']);
    },
  );

  it('never retries a domain error', async () => {
    // Arrange
    const { handlers, calls } = fakeSteps({
      RenderInventory: async () => {
        throw namedError('ValidationError', 'duplicate result name');
      },
    });
    // Act
    await run(handlers);
    // Assert
    expect(calls.filter((c) => c === 'RenderInventory')).toHaveLength(1);
  });

  it('retries a transient error and then goes on', async () => {
    // Arrange
    let attempts = 0;
    const { handlers, calls } = fakeSteps({
      RenderInventory: async () => {
        attempts++;
        if (attempts < 3) throw namedError('TransientError', 'throttled');
        return { document_key: 'k', timeout_seconds: 60 };
      },
    });
    // Act
    const { error } = await run(handlers);
    // Assert
    expect(error).toBeUndefined();
    expect(calls.filter((c) => c === 'RenderInventory')).toHaveLength(3);
    expect(calls).toContain('RecordArtifacts');
  });

  it.each([
    ['FailSession', 'ValidationError'],
    ['Cleanup', 'NotFoundError'],
  ])('runs %s once when it throws a domain error (%s) and fails the execution, for the execution clean-up to finish', async (step, name) => {
    // Arrange: a failure path, so FailSession and Cleanup both run.
    const { handlers, calls } = fakeSteps({
      RenderInventory: async () => {
        throw namedError('ValidationError', 'duplicate result name');
      },
      [step]: async () => {
        throw namedError(name, `${step} refused`);
      },
    });
    // Act
    const { error } = await run(handlers);
    // Assert
    expect(calls.filter((c) => c === step)).toHaveLength(1);
    expect(error?.name).toBe(name);
    expect(calls.at(-1)).toBe(step);
  });

  it.each(['FailSession', 'Cleanup'])('retries a transient error in %s and then goes on', async (step) => {
    // Arrange
    let attempts = 0;
    const { handlers, calls } = fakeSteps({
      RenderInventory: async () => {
        throw namedError('ValidationError', 'duplicate result name');
      },
      [step]: async () => {
        attempts++;
        if (attempts === 1) throw namedError('Lambda.ServiceException', 'Lambda is unavailable');
        if (attempts === 2) throw namedError('TransientError', 'throttled');
        return {};
      },
    });
    // Act
    const { error } = await run(handlers);
    // Assert
    expect(calls.filter((c) => c === step)).toHaveLength(3);
    expect(calls.slice(-1)).toEqual(['Cleanup']);
    expect(error?.name).toBe('SessionFailed');
  });

  it('catches a runner failure (States.TaskFailed) and goes to FailSession without packaging', async () => {
    // Arrange
    const { handlers, calls } = fakeSteps({
      RunAnsible: async () => {
        throw namedError('States.TaskFailed', 'the runner exited with code 1');
      },
    });
    // Act
    const { error } = await run(handlers);
    // Assert
    expect(error?.name).toBe('SessionFailed');
    expect(calls).toEqual(['ValidateImages', 'StageImage', 'StageImage', 'RenderInventory', 'RunAnsible', 'FailSession', 'Cleanup']);
  });

  it('hands RunAnsible the run document key and session in the ECS container overrides', async () => {
    // Arrange
    let parameters: Record<string, unknown> | undefined;
    const { handlers } = fakeSteps({
      RunAnsible: async (input) => {
        parameters = input;
        return {};
      },
    });
    // Act
    await run(handlers);
    // Assert
    expect(parameters?.Overrides).toEqual({
      ContainerOverrides: [
        {
          Name: 'runner',
          Environment: [
            { Name: 'SESSION_NAME', Value: 's' },
            { Name: 'RUN_DOCUMENT_KEY', Value: 'sessions/s/run-document.json' },
          ],
        },
      ],
    });
  });
});

describe('the ASL file', () => {
  const text = readFileSync(aslPath(), 'utf8');
  const definition = JSON.parse(text) as { States: Record<string, Record<string, unknown>> };

  it('has the state names the engine and the CDK stack rely on', () => {
    expect(Object.keys(definition.States)).toEqual(
      expect.arrayContaining(['ValidateImages', 'WaitForImages', 'StageImages', 'RenderInventory', 'RunAnsible', 'PackageAndUpload', 'RecordArtifacts', 'FailSession', 'Cleanup']),
    );
  });

  it('names every resource through a placeholder', () => {
    expect(aslPlaceholders(text)).toEqual([
      'CleanupFunctionArn',
      'FailSessionFunctionArn',
      'PackageAndUploadFunctionArn',
      'RecordArtifactFunctionArn',
      'RenderInventoryFunctionArn',
      'RunnerClusterArn',
      'RunnerSecurityGroupId',
      'RunnerSubnetA',
      'RunnerSubnetB',
      'RunnerTaskDefinitionArn',
      'StageImageFunctionArn',
      'ValidateImageFunctionArn',
      'WaitForImagesFunctionArn',
    ]);
  });

  it('matches only error names that exist: domain errors, or the States, Lambda and ECS families', () => {
    const names = [...text.matchAll(/"ErrorEquals":\s*\[([^\]]*)\]/g)].flatMap((m) => JSON.parse(`[${m[1]}]`) as string[]);
    const unknown = names.filter((n) => !(DOMAIN_ERROR_NAMES as readonly string[]).includes(n) && !/^(States|Lambda|ECS)\./.test(n));
    expect(names.length).toBeGreaterThan(10);
    expect(unknown).toEqual([]);
  });

  it('retries only transient errors, never States.ALL: every Lambda Task state the same list', () => {
    const retries: Record<string, string[][]> = {};
    const visit = (states: Record<string, Record<string, unknown>>) => {
      for (const [name, state] of Object.entries(states)) {
        if (state.Type === 'Task') retries[name] = ((state.Retry ?? []) as { ErrorEquals: string[] }[]).map((r) => r.ErrorEquals);
        const processor = state.ItemProcessor as { States: Record<string, Record<string, unknown>> } | undefined;
        if (processor) visit(processor.States);
      }
    };
    visit(definition.States);
    const transient = ['TransientError', 'Lambda.ServiceException', 'Lambda.TooManyRequestsException', 'Lambda.SdkClientException'];
    for (const state of ['ValidateImages', 'StageImage', 'RenderInventory', 'PackageImage', 'RecordArtifacts', 'FailSession', 'Cleanup']) {
      expect(retries[state], state).toEqual([transient]);
    }
    const retried = Object.values(retries).flat(2);
    expect(retried).not.toContain('States.ALL');
    // Of the errors module's names, only TransientError is ever retried.
    expect(new Set(retried.filter((n) => (DOMAIN_ERROR_NAMES as readonly string[]).includes(n)))).toEqual(new Set(['TransientError']));
  });

  it('sets a timeout on every Task state', () => {
    const tasks: Record<string, unknown>[] = [];
    const visit = (states: Record<string, Record<string, unknown>>) => {
      for (const state of Object.values(states)) {
        if (state.Type === 'Task') tasks.push(state);
        const processor = state.ItemProcessor as { States: Record<string, Record<string, unknown>> } | undefined;
        if (processor) visit(processor.States);
      }
    };
    visit(definition.States);
    expect(tasks.length).toBe(9);
    expect(tasks.filter((t) => t.TimeoutSeconds === undefined && t.TimeoutSecondsPath === undefined)).toEqual([]);
  });
});
