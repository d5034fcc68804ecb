import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { runnerKeys, sessionKeys } from '../../functions/core/workflow/session-keys.ts';
import { expiredSessionsIn, removeExpiredSessionObjects, TTL_PRINCIPAL, type TableStreamRecord } from '../../functions/steps/expired-sessions.ts';
import { sessionExpiredHandler } from '../../functions/handlers/session-expired.ts';
import { fakeStepPorts, type FakeStepPorts } from '../helpers/in-memory-ports.ts';
import { runDocumentFor } from '../helpers/run-document.ts';
import { pendingSession } from '../helpers/session-fixtures.ts';

const A = '11111111-1111-4111-8111-111111111111';
const OLD = runnerKeys('a'.repeat(32));
const NEW = runnerKeys('b'.repeat(32));

/** A stream record of the session item `name` (run by `job`) removed by `principal`. */
function removal(name: string, job: string, principal = TTL_PRINCIPAL, sk = 'SESSION'): TableStreamRecord {
  return {
    eventName: 'REMOVE',
    userIdentity: principal === TTL_PRINCIPAL ? { type: 'Service', principalId: principal } : undefined,
    dynamodb: { OldImage: { pk: { S: `SESSION#${name}` }, sk: { S: sk }, doc: { M: { status: { M: { session: { M: { job: { S: job } } } } } } } } },
  };
}

async function leaveRun(ports: FakeStepPorts, name: string, job: string, runner: ReturnType<typeof runnerKeys>): Promise<void> {
  const document = JSON.stringify({ ...runDocumentFor(name, runner, { cloneUrl: 'file:///repo' }), job });
  await ports.artifacts.put(runner.runDocument, document);
  await ports.artifacts.put(sessionKeys.runDocument(name), document);
  await ports.artifacts.put(`${runner.logsPrefix}0-base.log`, `the log of ${job}\n`);
}

describe('the sessions a stream batch says the TTL expired', () => {
  it("takes only DynamoDB's own removals of session items, with the job that ran each", () => {
    // Arrange
    const records: TableStreamRecord[] = [
      removal('expired', 'job-1'),
      removal('deleted-by-the-api', 'job-2', 'AROAEXAMPLE:api'),
      removal('expired', 'job-1', TTL_PRINCIPAL, 'TAG#team=a'),
      { ...removal('modified', 'job-3'), eventName: 'MODIFY' },
      { eventName: 'REMOVE', userIdentity: { type: 'Service', principalId: TTL_PRINCIPAL }, dynamodb: { OldImage: { pk: { S: 'IMAGE#x' }, sk: { S: 'IMAGE' } } } },
    ];

    // Act
    const expired = expiredSessionsIn(records);

    // Assert
    expect(expired).toEqual([{ name: 'expired', job: 'job-1' }]);
  });
});

describe("an expired session's stored objects", () => {
  let ports: FakeStepPorts;
  beforeEach(() => {
    ports = fakeStepPorts();
  });
  afterEach(() => ports.dispose());

  it('go with its record: documents, logs and the runner prefix', async () => {
    // Arrange
    await leaveRun(ports, 'expired', 'job-1', OLD);
    await ports.artifacts.put(sessionKeys.sessionPrefix('expired') + 'logs/0-base.log', 'log\n');

    // Act
    const handler = sessionExpiredHandler(() => ports);
    const { removed } = await handler({ Records: [removal('expired', 'job-1')] });

    // Assert
    expect(removed).toEqual(['expired']);
    expect(await ports.artifacts.list('sessions/')).toEqual([]);
    expect(await ports.artifacts.list('runner/')).toEqual([]);
  });

  it('are left alone when a newer session of the same name already runs from them', async () => {
    // Arrange: the expired run (job-1) left nothing but the newer one's (job-2) is there.
    await leaveRun(ports, 's', 'job-2', NEW);
    const newer: SessionRecord = pendingSession('s', { Compute: [A] });
    newer.status.session = { ...newer.status.session, status: 'running', job: 'job-2' };
    await ports.sessions.create(newer);

    // Act
    const removed = await removeExpiredSessionObjects(ports, [{ name: 's', job: 'job-1' }]);

    // Assert
    expect(removed).toEqual([]);
    expect(await ports.artifacts.list(NEW.logsPrefix)).toEqual([`${NEW.logsPrefix}0-base.log`]);
    expect(await ports.artifacts.head(sessionKeys.runDocument('s'))).toBeDefined();
  });
});
