import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SessionRecord, SessionStep } from '../../functions/core/model/session.ts';
import { readSessionLogs } from '../../functions/core/sessions/logs.ts';
import { runnerKeys, sessionKeys, testLogKey } from '../../functions/core/workflow/session-keys.ts';
import { fakeStepPorts, type FakeStepPorts } from '../helpers/in-memory-ports.ts';
import { runDocumentFor } from '../helpers/run-document.ts';
import { pendingSession } from '../helpers/session-fixtures.ts';

const A = '11111111-1111-4111-8111-111111111111';
const C = '33333333-3333-4333-8333-333333333333';
const runner = runnerKeys('e'.repeat(32));
const layerLog = `${runner.logsPrefix}0-base.log`;
const check = (image: string, name: string) => testLogKey(runner.logsPrefix, image, { check: name });
const boot = (image: string) => testLogKey(runner.logsPrefix, image, 'boot');

function session(steps: SessionStep[], status: 'running' | 'complete' = 'running'): SessionRecord {
  const record = pendingSession('s1', { Compute: [A, C] });
  record.status.session.status = status;
  record.status.steps = steps;
  return record;
}

/** The control-plane run document of a two-image session asking for two checks and a boot test (none when `validation` is false). */
function runDocument(validation = true) {
  const one = runDocumentFor('s1', runner, { image: A });
  const image = (id: string, result: string) => ({ ...one.images[0]!, image_id: id, result_id: result, upload_prefix: runner.resultPrefix(result) });
  return {
    ...one,
    images: [image(A, 'ra'), image(C, 'rc')],
    ...(validation
      ? { validation: { checks: [{ name: 'hello', command: '/usr/bin/hello' }, { name: 'unit', command: 'systemctl is-enabled x' }], boot: { success_pattern: 'READY' } } }
      : {}),
  };
}

describe("reading a session's test logs", () => {
  let ports: FakeStepPorts;
  beforeEach(() => {
    ports = fakeStepPorts();
  });
  afterEach(() => ports.dispose());

  async function arrange(record: SessionRecord, logs: Record<string, string>, validation = true) {
    await ports.sessionTable.create(record);
    await ports.artifacts.put(sessionKeys.runDocument('s1'), JSON.stringify(runDocument(validation)));
    for (const [key, text] of Object.entries(logs)) await ports.artifacts.put(key, text);
  }

  it("lists each image's checks then its boot console, in run order, with states from the test entries", async () => {
    // Arrange
    await arrange(
      session([
        { name: 'ansible', layer: 'base', state: 'succeeded' },
        { name: 'test', image_id: A, state: 'running' },
        { name: 'test', image_id: A, check: 'hello', state: 'succeeded', duration_ms: 5 },
        { name: 'test', image_id: A, check: 'unit', state: 'running' },
      ]),
      {},
    );
    // Act
    const chunk = await readSessionLogs(ports, 's1', { max_bytes: '1' });
    // Assert
    expect(chunk.tests).toEqual([
      { test: `${A}/check-hello`, image_id: A, check: 'hello', state: 'succeeded', log_key: check(A, 'hello') },
      { test: `${A}/check-unit`, image_id: A, check: 'unit', state: 'running', log_key: check(A, 'unit') },
      { test: `${A}/boot-console`, image_id: A, boot: true, state: 'pending', log_key: boot(A) },
      { test: `${C}/check-hello`, image_id: C, check: 'hello', state: 'pending', log_key: check(C, 'hello') },
      { test: `${C}/check-unit`, image_id: C, check: 'unit', state: 'pending', log_key: check(C, 'unit') },
      { test: `${C}/boot-console`, image_id: C, boot: true, state: 'pending', log_key: boot(C) },
    ]);
    expect(chunk.layers).toEqual([{ index: 0, name: 'base', state: 'succeeded', log_key: layerLog }]);
  });

  it('follows on from the last layer into every test log in order, and is complete once the session is', async () => {
    // Arrange
    await arrange(session([{ name: 'ansible', layer: 'base', state: 'succeeded' }], 'complete'), {
      [layerLog]: 'PLAY RECAP\n',
      [check(A, 'hello')]: 'hello, world\n',
      [check(A, 'unit')]: 'enabled\n',
      [boot(A)]: 'Linux version 6.1\nREADY\n',
      [check(C, 'hello')]: 'hello: not found',
    });
    // Act
    const all = await readSessionLogs(ports, 's1');
    const again = await readSessionLogs(ports, 's1', { cursor: all.cursor });
    // Assert
    expect(all.text).toBe('PLAY RECAP\nhello, world\nenabled\nLinux version 6.1\nREADY\nhello: not found');
    expect(all).toMatchObject({ cursor: 't5:0', complete: true });
    expect(again).toMatchObject({ text: '', cursor: 't5:0', complete: true });
    // Never run, so never logged: skipped once the session is complete.
    expect(all.tests.slice(3).map((t) => t.state)).toEqual(['skipped', 'skipped', 'skipped']);
  });

  it('waits in a running check until its status ends or a later log of the same image appears, handing out whole lines', async () => {
    // Arrange
    await arrange(
      session([
        { name: 'ansible', layer: 'base', state: 'running' },
        { name: 'test', image_id: A, check: 'hello', state: 'running' },
      ]),
      { [layerLog]: 'PLAY RECAP', [check(A, 'hello')]: 'line one\npartial' },
    );
    // Act
    const first = await readSessionLogs(ports, 's1');
    await ports.artifacts.put(check(A, 'unit'), 'unit output\n');
    const second = await readSessionLogs(ports, 's1', { cursor: first.cursor });
    // Assert: the layer ended (a test log exists), the check's partial line waits for its end.
    expect(first).toMatchObject({ text: 'PLAY RECAPline one\n', cursor: 't0:9', complete: false });
    expect(second).toMatchObject({ text: 'partialunit output\n', cursor: 't1:12', complete: false });
  });

  it("does not take another image's log as the end of a test log", async () => {
    // Arrange
    await arrange(session([{ name: 'ansible', layer: 'base', state: 'succeeded' }]), { [boot(A)]: 'booting', [check(C, 'hello')]: 'hello\n' });
    // Act
    const chunk = await readSessionLogs(ports, 's1', { cursor: 't2:0' });
    // Assert
    expect(chunk).toMatchObject({ text: '', cursor: 't2:0', complete: false });
  });

  it('reads one test log alone with test=, complete once that test has ended', async () => {
    // Arrange
    await arrange(
      session([
        { name: 'ansible', layer: 'base', state: 'succeeded' },
        { name: 'test', image_id: A, boot: 'tcg', state: 'failed' },
        { name: 'test', image_id: C, check: 'hello', state: 'running' },
      ]),
      { [layerLog]: 'PLAY\n', [boot(A)]: 'Kernel panic', [check(C, 'hello')]: 'hi\n' },
    );
    // Act
    const console = await readSessionLogs(ports, 's1', { test: `${A}/boot-console` });
    const running = await readSessionLogs(ports, 's1', { test: `${C}/check-hello` });
    // Assert
    expect(console).toMatchObject({ test: `${A}/boot-console`, text: 'Kernel panic', cursor: 't2:12', complete: true });
    expect(console.layer).toBeUndefined();
    expect(running).toMatchObject({ test: `${C}/check-hello`, text: 'hi\n', cursor: 't3:3', complete: false });
  });

  it('refuses a test that names no test log, a test with a layer, and a cursor outside the log asked for, naming the field', async () => {
    // Arrange
    await arrange(session([]), {});
    // Act
    const refusal = (request: Parameters<typeof readSessionLogs>[2]) => readSessionLogs(ports, 's1', request).then(() => undefined, (error: unknown) => error);
    const unknown = await refusal({ test: `${A}/check-nope` });
    const both = await refusal({ test: `${A}/check-hello`, layer: '0' });
    const outside = await refusal({ test: `${A}/check-hello`, cursor: 't1:0' });
    const past = await refusal({ cursor: 't6:0' });
    // Assert
    expect(unknown).toMatchObject({ name: 'ValidationError', field: 'test', message: expect.stringContaining('check-nope') });
    expect(both).toMatchObject({ name: 'ValidationError', field: 'test' });
    expect(outside).toMatchObject({ name: 'ValidationError', field: 'cursor' });
    expect(past).toMatchObject({ name: 'ValidationError', field: 'cursor' });
  });

  it('keeps layer-only cursors and lists no tests for a session without validation, refusing any test', async () => {
    // Arrange
    await arrange(session([{ name: 'ansible', layer: 'base', state: 'succeeded' }], 'complete'), { [layerLog]: 'PLAY RECAP\n' }, false);
    // Act
    const chunk = await readSessionLogs(ports, 's1');
    const test = await readSessionLogs(ports, 's1', { test: `${A}/check-hello` }).then(() => undefined, (error: unknown) => error);
    // Assert
    expect(chunk).toMatchObject({ text: 'PLAY RECAP\n', cursor: '0:11', complete: true, tests: [] });
    expect(test).toMatchObject({ name: 'ValidationError', field: 'test', message: expect.stringContaining('no test logs') });
  });
});
