import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NotFoundError } from '../../functions/core/errors.ts';
import { getImage } from '../../functions/core/images/read-images.ts';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { fakeStepPorts, type FakeStepPorts } from '../helpers/in-memory-ports.ts';
import { pendingSession } from '../helpers/session-fixtures.ts';

const SOURCE = '11111111-1111-4111-8111-111111111111';
const RESULT = '22222222-2222-4222-8222-222222222222';

/** Session `s` with its result prepared (hidden, `pending_session`) and the session in `state`. */
async function prepared(ports: FakeStepPorts, state: 'running' | 'complete', succeeded: 'none' | 'true' | 'false', artifacts: SessionRecord['status']['artifacts']): Promise<void> {
  const session = pendingSession('s', { Compute: [SOURCE] });
  session.status.session = { ...session.status.session, status: state, succeeded };
  session.status.artifacts = artifacts;
  await ports.sessions.create(session);
  await ports.images.create({ id: RESULT, name: 'result', created: '2026-11-26T10:00:00Z', arch: 'x86_64', metadata: {}, pending_session: 's' });
}

describe("a session's result between its commit and its reveal", () => {
  let ports: FakeStepPorts;
  beforeEach(() => {
    ports = fakeStepPorts();
  });
  afterEach(() => ports.dispose());

  it('is shown as soon as the session completed with it, before the step that reveals it ran', async () => {
    // Arrange
    await prepared(ports, 'complete', 'true', [{ image_id: SOURCE, result_id: RESULT, type: 'ims_customized_image' }]);

    // Act
    const image = await getImage(ports, RESULT);

    // Assert
    expect(image.id).toBe(RESULT);
    expect(image.pending_session).toBeUndefined();
  });

  it('is shown when the reveal lands between the first read, which found it hidden, and the second', async () => {
    // Arrange
    await prepared(ports, 'complete', 'true', [{ image_id: SOURCE, result_id: RESULT, type: 'ims_customized_image' }]);
    const get = ports.images.get.bind(ports.images);
    let reads = 0;
    ports.images.get = async (id, options) => {
      reads += 1;
      // The second read (the one that looks for a hidden result) finds it revealed: the session is gone by then too.
      if (reads === 2) {
        await ports.images.update(id, ({ pending_session: _pending, ...shown }) => shown);
        await ports.sessions.delete('s');
      }
      return get(id, options);
    };

    // Act
    const image = await getImage(ports, RESULT);

    // Assert
    expect(reads).toBe(2);
    expect(image).toMatchObject({ id: RESULT, name: 'result' });
    expect(image.pending_session).toBeUndefined();
  });

  it('stays hidden while its session runs, and when the session failed or does not list it', async () => {
    // Arrange
    await prepared(ports, 'running', 'none', []);
    const setSession = (session: Partial<SessionRecord['status']['session']>) =>
      ports.sessions.update('s', (s) => ({ ...s, status: { ...s.status, session: { ...s.status.session, ...session } } }));

    // Act / Assert: running; complete but failed; complete and succeeded without it in its artifacts.
    await expect(getImage(ports, RESULT)).rejects.toBeInstanceOf(NotFoundError);
    await setSession({ status: 'complete', succeeded: 'false' });
    await expect(getImage(ports, RESULT)).rejects.toBeInstanceOf(NotFoundError);
    await setSession({ succeeded: 'true' });
    await expect(getImage(ports, RESULT)).rejects.toBeInstanceOf(NotFoundError);
  });
});
