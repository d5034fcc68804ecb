import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { z } from 'zod';
import { afterAll, describe, expect, it } from 'vitest';
import { aslPlaceholders } from '../../functions/adapters/local/asl-definition.ts';
import { aslPath } from '../../functions/core/workflow/asl-path.ts';
import { LocalWorkflowEngine } from '../../functions/adapters/local/local-workflow-engine.ts';
import { DOMAIN_ERROR_NAMES } from '../../functions/core/errors.ts';
import { ROOT_DIR } from '../../lib/bundles.ts';
import { TABLE_DATA_ACTIONS } from '../../lib/constructs/session-table.ts';
import { STEP_FUNCTIONS } from '../../lib/constructs/step-functions.ts';
import { fakeStepPorts } from '../helpers/in-memory-ports.ts';
import { logicalId, synthesizeStack } from './stack-fixture.ts';

interface AslState {
  Type: string;
  Resource?: string;
  Parameters?: Record<string, unknown>;
  ItemSelector?: Record<string, unknown>;
  TimeoutSeconds?: number;
  TimeoutSecondsPath?: string;
  ItemProcessor?: { States: Record<string, AslState> };
}

const text = readFileSync(aslPath(), 'utf8');
const definition = JSON.parse(text) as { States: Record<string, AslState> };

/** Every Task state, with the input it receives (its Parameters, or its Map's ItemSelector). */
function taskStates(states: Record<string, AslState>, itemSelector?: Record<string, unknown>): { name: string; state: AslState; input: Record<string, unknown> }[] {
  return Object.entries(states).flatMap(([name, state]) => {
    if (state.ItemProcessor) return taskStates(state.ItemProcessor.States, state.ItemSelector);
    if (state.Type !== 'Task') return [];
    return [{ name, state, input: state.Parameters ?? itemSelector ?? {} }];
  });
}
const tasks = taskStates(definition.States);

/** The placeholder a Task state's Lambda comes from: its Resource, or the FunctionName of a lambda:invoke integration. */
function functionPlaceholder(state: AslState): string | undefined {
  const source = state.Resource?.startsWith('arn:aws:states:::lambda:') ? (state.Parameters?.FunctionName as string) : state.Resource;
  return /^\$\{(\w+FunctionArn)\}$/.exec(source ?? '')?.[1];
}

/** The field names a state passes (`name.$` is the field `name`). */
function fieldsOf(input: Record<string, unknown>): string[] {
  return Object.keys(input).map((k) => k.replace(/\.\$$/, '')).sort();
}

const synthesized = synthesizeStack();
afterAll(() => synthesized.dispose());

describe('the ASL, the CDK substitutions, the Lambda handlers and the embedded engine name the same things', () => {
  it('fills every ASL placeholder with a CDK substitution, and substitutes nothing else', () => {
    // Arrange
    const { template } = synthesized;
    const machine = template.toJSON().Resources[logicalId(template, 'AWS::StepFunctions::StateMachine', 'WorkflowStateMachine')] as { Properties: { DefinitionSubstitutions: Record<string, unknown> } };
    // Act
    const substituted = Object.keys(machine.Properties.DefinitionSubstitutions).sort();
    // Assert
    expect(substituted).toEqual(aslPlaceholders(text));
    expect(Object.keys(synthesized.stack.workflow.substitutions).sort()).toEqual(aslPlaceholders(text));
  });

  it('maps every Task state to a handler in the embedded engine, and the engine handles no state the ASL lacks', () => {
    // Arrange
    const ports = fakeStepPorts();
    const engine = new LocalWorkflowEngine({ ports, storeDir: '/nonexistent', workDir: '/nonexistent', maxConcurrentRuns: 1, events: { subscribe: () => undefined } });
    // Act
    const handled = Object.keys((engine as unknown as { handlers(session: string): Record<string, unknown> }).handlers('s')).sort();
    ports.dispose();
    // Assert
    expect(handled).toEqual(tasks.map((t) => t.name).sort());
  });

  it('backs every Lambda Task state with the step function the CDK deploys for its placeholder; only RunAnsible is not a Lambda', () => {
    // Act
    const lambdaTasks = tasks.filter((t) => functionPlaceholder(t.state));
    // Assert
    expect(tasks.filter((t) => !functionPlaceholder(t.state)).map((t) => t.name)).toEqual(['RunAnsible']);
    for (const task of lambdaTasks) {
      const spec = STEP_FUNCTIONS.find((s) => s.placeholder === functionPlaceholder(task.state));
      expect(spec?.states, task.name).toContain(task.name);
    }
    expect(STEP_FUNCTIONS.flatMap((s) => s.states).sort()).toEqual(lambdaTasks.map((t) => t.name).sort());
  });

  it("gives every handler the state name and the exact input fields its Task state passes", async () => {
    for (const spec of STEP_FUNCTIONS) {
      // Arrange
      const module = (await import(`../../functions/handlers/${spec.entry}.ts`)) as Record<string, unknown>;
      const definitionExport = Object.values(module).find((v): v is { state: string; input: z.ZodObject } => typeof v === 'object' && v !== null && 'state' in v && 'input' in v);
      const task = tasks.find((t) => t.name === definitionExport?.state);
      // Act
      const passed = task ? fieldsOf(task.state.Resource?.startsWith('arn:aws:states:::lambda:') ? (task.input.Payload as Record<string, unknown>) : task.input) : [];
      // Assert
      expect(spec.states, spec.entry).toEqual([definitionExport?.state]);
      expect(Object.keys(definitionExport!.input.shape).sort(), spec.entry).toEqual(passed);
    }
  });

  it('ends each step function before its Task state times out, so a slow call fails as the function\'s own timeout', () => {
    for (const spec of STEP_FUNCTIONS) {
      for (const state of spec.states) {
        const task = tasks.find((t) => t.name === state)!.state;
        expect(spec.timeoutSeconds).toBeLessThanOrEqual(900);
        // A callback task's timeout is its wait (WaitForImages: the poll interval), not its function's: the state waits for the token, not the function.
        if (task.Resource?.endsWith('.waitForTaskToken')) expect(task.TimeoutSecondsPath, state).toBe('$.validation.poll_seconds');
        else expect(spec.timeoutSeconds, state).toBeLessThan(task.TimeoutSeconds!);
      }
    }
  });

  it('matches in Retry and Catch only error names that exist: domain errors, or the States, Lambda and ECS families', () => {
    // Act
    const names = [...text.matchAll(/"ErrorEquals":\s*\[([^\]]*)\]/g)].flatMap((m) => JSON.parse(`[${m[1]}]`) as string[]);
    // Assert
    expect(names.filter((n) => !(DOMAIN_ERROR_NAMES as readonly string[]).includes(n) && !/^(States|Lambda|ECS)\./.test(n))).toEqual([]);
    expect(names).toContain('TransientError');
  });

  it('grants every DynamoDB item action the adapters send', () => {
    // Arrange: the lib-dynamodb commands of the adapters that run in AWS (table creation and migration run only on dynalite).
    const commandAction: Record<string, string> = {
      GetCommand: 'dynamodb:GetItem',
      PutCommand: 'dynamodb:PutItem',
      DeleteCommand: 'dynamodb:DeleteItem',
      QueryCommand: 'dynamodb:Query',
      BatchGetCommand: 'dynamodb:BatchGetItem',
      BatchWriteCommand: 'dynamodb:BatchWriteItem',
      UpdateCommand: 'dynamodb:UpdateItem',
      ScanCommand: 'dynamodb:Scan',
      TransactWriteCommand: 'dynamodb:TransactWriteItems (and the item actions it contains)',
      TransactGetCommand: 'dynamodb:TransactGetItems',
    };
    const sources = readdirSync(join(ROOT_DIR, 'functions/adapters/dynamodb'))
      .filter((f) => f.endsWith('.ts') && f !== 'table-migration.ts')
      .map((f) => join(ROOT_DIR, 'functions/adapters/dynamodb', f));
    // Act
    const used = new Set(sources.flatMap((file) => [...readFileSync(file, 'utf8').matchAll(/new (\w+Command)\(/g)].map((m) => m[1]!)));
    // Assert
    expect(used.size).toBeGreaterThan(3);
    for (const command of used) expect(TABLE_DATA_ACTIONS as readonly string[], command).toContain(commandAction[command] ?? `an unmapped command ${command}`);
  });
});
