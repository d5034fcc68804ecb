import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { readSessionLogs, usableLength } from '../../functions/core/sessions/logs.ts';
import { runnerKeys, sessionKeys } from '../../functions/core/workflow/session-keys.ts';
import { fakeStepPorts, type FakeStepPorts } from '../helpers/in-memory-ports.ts';
import { runDocumentFor } from '../helpers/run-document.ts';
import { pendingSession } from '../helpers/session-fixtures.ts';

const A = '11111111-1111-4111-8111-111111111111';

function twoLayerSession(steps: NonNullable<SessionRecord['status']['steps']>, status: 'running' | 'complete' = 'running'): SessionRecord {
  const session = pendingSession('s1', { Compute: [A] });
  session.status.layers = [
    { name: 'first', clone_url: 'file:///repo', commit: 'a'.repeat(40), playbook: 'a.yml' },
    { name: 'second layer', clone_url: 'file:///repo', commit: 'b'.repeat(40), playbook: 'b.yml' },
  ];
  session.status.session.status = status;
  session.status.steps = steps;
  return session;
}

describe('reading a session log by cursor', () => {
  let ports: FakeStepPorts;
  beforeEach(() => {
    ports = fakeStepPorts();
  });
  afterEach(() => ports.dispose());

  it('hands out whole lines of a running layer and continues from the returned cursor', async () => {
    // Arrange
    await ports.sessionTable.create(twoLayerSession([{ name: 'ansible', layer: 'first', state: 'running', start_time: 't' }]));
    await ports.artifacts.put('sessions/s1/logs/0-first.log', 'PLAY [one]\nTASK [a]\nok: [x');
    // Act
    const first = await readSessionLogs(ports, 's1');
    await ports.artifacts.put('sessions/s1/logs/0-first.log', 'PLAY [one]\nTASK [a]\nok: [x]\nTASK [b]\n');
    const second = await readSessionLogs(ports, 's1', { cursor: first.cursor });
    // Assert
    expect(first).toMatchObject({ text: 'PLAY [one]\nTASK [a]\n', cursor: '0:20', complete: false });
    expect(second).toMatchObject({ text: 'ok: [x]\nTASK [b]\n', cursor: '0:37', complete: false });
    expect(first.layers.map((l) => [l.name, l.state, l.log_key])).toEqual([
      ['first', 'running', 'sessions/s1/logs/0-first.log'],
      ['second layer', 'pending', 'sessions/s1/logs/1-second_layer.log'],
    ]);
  });

  it("reads the logs under the runner's prefix that the session's run document names, and nothing at the old keys", async () => {
    // Arrange
    const runner = runnerKeys('f'.repeat(32));
    await ports.sessionTable.create(twoLayerSession([{ name: 'ansible', layer: 'first', state: 'running', start_time: 't' }]));
    const document = { ...runDocumentFor('s1', runner, { image: A, layer: 'first' }), progress_key: runner.progress };
    await ports.artifacts.put(sessionKeys.runDocument('s1'), JSON.stringify(document));
    await ports.artifacts.put(`${runner.logsPrefix}0-first.log`, 'from the runner\n');
    await ports.artifacts.put('sessions/s1/logs/0-first.log', 'planted at the old key\n');
    // Act
    const chunk = await readSessionLogs(ports, 's1');
    // Assert
    expect(chunk.text).toBe('from the runner\n');
    expect(chunk.layers[0]!.log_key).toBe(`${runner.logsPrefix}0-first.log`);
  });

  it('moves on to the next layer once a layer has ended, and is complete when the session is', async () => {
    // Arrange
    await ports.sessionTable.create(
      twoLayerSession(
        [
          { name: 'ansible', layer: 'first', state: 'succeeded' },
          { name: 'ansible', layer: 'second layer', state: 'failed' },
        ],
        'complete',
      ),
    );
    await ports.artifacts.put('sessions/s1/logs/0-first.log', 'one\n');
    await ports.artifacts.put('sessions/s1/logs/1-second_layer.log', 'two, no newline');
    // Act
    const all = await readSessionLogs(ports, 's1');
    const again = await readSessionLogs(ports, 's1', { cursor: all.cursor });
    // Assert
    expect(all).toMatchObject({ text: 'one\ntwo, no newline', cursor: '1:15', complete: true });
    expect(again).toMatchObject({ text: '', complete: true });
  });

  it('treats a layer as ended when a later layer has a log, even before its status says so', async () => {
    // Arrange
    await ports.sessionTable.create(twoLayerSession([{ name: 'ansible', layer: 'first', state: 'running' }]));
    await ports.artifacts.put('sessions/s1/logs/0-first.log', 'last line without newline');
    await ports.artifacts.put('sessions/s1/logs/1-second_layer.log', 'second\n');
    // Act
    const chunk = await readSessionLogs(ports, 's1');
    // Assert
    expect(chunk).toMatchObject({ text: 'last line without newline' + 'second\n', cursor: '1:7', complete: false });
  });

  it('reads only the layer asked for, complete when that layer has ended', async () => {
    // Arrange
    await ports.sessionTable.create(
      twoLayerSession([
        { name: 'ansible', layer: 'first', state: 'succeeded' },
        { name: 'ansible', layer: 'second layer', state: 'running' },
      ]),
    );
    await ports.artifacts.put('sessions/s1/logs/0-first.log', 'one\n');
    await ports.artifacts.put('sessions/s1/logs/1-second_layer.log', 'two\n');
    // Act
    const second = await readSessionLogs(ports, 's1', { layer: '1' });
    const first = await readSessionLogs(ports, 's1', { layer: '0' });
    // Assert
    expect(second).toMatchObject({ layer: 1, text: 'two\n', cursor: '1:4', complete: false });
    expect(first).toMatchObject({ layer: 0, text: 'one\n', cursor: '0:4', complete: true });
  });

  it('answers in chunks of at most max_bytes', async () => {
    // Arrange
    await ports.sessionTable.create(twoLayerSession([{ name: 'ansible', layer: 'first', state: 'succeeded' }], 'complete'));
    await ports.artifacts.put('sessions/s1/logs/0-first.log', 'aaaa\nbbbb\ncccc\n');
    // Act
    const first = await readSessionLogs(ports, 's1', { max_bytes: '10' });
    const rest = await readSessionLogs(ports, 's1', { cursor: first.cursor, max_bytes: '10' });
    // Assert
    expect(first).toMatchObject({ text: 'aaaa\nbbbb\n', cursor: '0:10', complete: false });
    expect(rest).toMatchObject({ text: 'cccc\n', complete: true });
  });

  it('refuses a cursor it did not make and a layer the session does not have', async () => {
    // Arrange
    await ports.sessionTable.create(twoLayerSession([]));
    // Act
    const badCursor = readSessionLogs(ports, 's1', { cursor: 'abc' });
    const badLayer = readSessionLogs(ports, 's1', { layer: '2' });
    const missing = readSessionLogs(ports, 'nope');
    // Assert
    // Together, so none of them rejects before its expectation is attached.
    await Promise.all([
      expect(badCursor).rejects.toMatchObject({ name: 'ValidationError', field: 'cursor' }),
      expect(badLayer).rejects.toMatchObject({ name: 'ValidationError', field: 'layer' }),
      expect(missing).rejects.toMatchObject({ name: 'NotFoundError' }),
    ]);
  });
});

describe('how much of a chunk is handed out', () => {
  it('never cuts a UTF-8 character when one long line fills the chunk', () => {
    // Arrange: "é" is two bytes; the chunk ends between them.
    const bytes = Buffer.from('aé', 'utf8').subarray(0, 2);
    // Act
    const length = usableLength(bytes, false, true);
    // Assert
    expect(length).toBe(1);
  });

  it('holds back a partial line of a running layer and gives everything once it has ended', () => {
    // Arrange
    const bytes = Buffer.from('done\npart');
    // Act / Assert
    expect(usableLength(bytes, false, false)).toBe(5);
    expect(usableLength(bytes, true, false)).toBe(9);
  });
});
