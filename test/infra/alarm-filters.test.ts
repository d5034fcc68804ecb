import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { matchesJsonFilterPattern } from './json-filter-pattern.ts';
import { logicalId, synthesizeStack } from './stack-fixture.ts';

// Samples of what Step Functions writes to the state machine's log group (the fixture names its sources).
const samples = (JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'step-functions-log-events.json'), 'utf8')) as { events: Record<string, unknown> }).events;
/** A sample as CloudWatch Logs holds it: one log event whose message is the JSON text. */
const message = (name: string) => {
  if (!(name in samples)) throw new Error(`no sample named ${name}`);
  return JSON.stringify(samples[name]);
};

const synthesized = synthesizeStack();
afterAll(() => synthesized.dispose());

describe("the runner-timeout metric filter against Step Functions' log events", () => {
  const { template } = synthesized;
  const filter = template.toJSON().Resources[logicalId(template, 'AWS::Logs::MetricFilter', 'AlarmsRunnerTimedOutFilter')] as { Properties: { FilterPattern: string } };
  const pattern = filter.Properties.FilterPattern;

  it('counts the event of RunAnsible (the ECS task) reaching its timeout', () => {
    expect(matchesJsonFilterPattern(pattern, message('RunAnsible timed out'))).toBe(true);
  });

  it.each(['WaitForImages poll interval passed', 'RunAnsible failed (runner exited non-zero)', 'RunAnsible scheduled', 'ValidateImages Lambda timed out', 'Execution timed out'])(
    'does not count %s',
    (name) => {
      expect(matchesJsonFilterPattern(pattern, message(name))).toBe(false);
    },
  );

  it('counts exactly one of the samples, so every sample is read', () => {
    // A pattern naming a field the events lack would match none; one matching everything, all.
    const matched = Object.keys(samples).filter((name) => matchesJsonFilterPattern(pattern, message(name)));
    expect(matched).toEqual(['RunAnsible timed out']);
  });
});

describe('the JSON filter pattern evaluator the test uses', () => {
  const event = JSON.stringify({ type: 'TaskTimedOut', id: '42', count: 3, details: { resourceType: 'ecs', resource: 'runTask.sync' } });

  it('compares nested string properties, with * as a wildcard, and numbers', () => {
    expect(matchesJsonFilterPattern('{ $.details.resource = "runTask.*" }', event)).toBe(true);
    expect(matchesJsonFilterPattern('{ $.details.resource = "runTask" }', event)).toBe(false);
    expect(matchesJsonFilterPattern('{ $.type != "TaskFailed" }', event)).toBe(true);
    expect(matchesJsonFilterPattern('{ $.count >= 3 }', event)).toBe(true);
    expect(matchesJsonFilterPattern('{ $.count > 3 }', event)).toBe(false);
  });

  it('treats a missing property or one of another type as not matching, and a message that is not a JSON object as matching nothing', () => {
    expect(matchesJsonFilterPattern('{ $.details.missing = "*" }', event)).toBe(false);
    expect(matchesJsonFilterPattern('{ $.details.missing != "x" }', event)).toBe(false);
    expect(matchesJsonFilterPattern('{ $.id = 42 }', event)).toBe(false);
    expect(matchesJsonFilterPattern('{ $.type = "*" }', 'TaskTimedOut ecs')).toBe(false);
  });

  it('joins terms with && and ||, grouped by parentheses', () => {
    expect(matchesJsonFilterPattern('{ ($.type = "TaskFailed") || ($.details.resourceType = "ecs") }', event)).toBe(true);
    expect(matchesJsonFilterPattern('{ ($.type = "TaskFailed") && ($.details.resourceType = "ecs") }', event)).toBe(false);
    expect(matchesJsonFilterPattern('{ ($.type = "TaskFailed" || $.id = "42") && $.count = 3 }', event)).toBe(true);
  });

  it('refuses syntax outside its subset rather than guessing', () => {
    expect(() => matchesJsonFilterPattern('{ $.type = "a" && $.id = "b" || $.count = 3 }', event)).toThrow(/mixes && and \|\|/);
    expect(() => matchesJsonFilterPattern('{ $.type IS NULL }', event)).toThrow();
    expect(() => matchesJsonFilterPattern('[ip, user]', event)).toThrow();
    expect(() => matchesJsonFilterPattern('{ $.items[0] = "a" }', event)).toThrow();
  });
});
