import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../functions/core/errors.ts';
import { renameErrorFieldToV2, sessionToV2, sessionToV3, v2RequestToV3, v3InputToV2Input } from '../../functions/core/sessions/session-conversion.ts';
import { v2SessionCreateSchema } from '../../functions/core/sessions/session-schemas.ts';
import { createSession, deleteSession, getSession } from '../../functions/core/sessions/session-use-cases.ts';
import { advanceSession } from '../../functions/core/sessions/status.ts';
import { parseOrThrow } from '../../functions/core/sessions/validation.ts';
import { fakeCfsPorts, IMG1, IMG2, storedConfiguration } from '../helpers/cfs-fakes.ts';
import { refusal } from '../helpers/refusal.ts';

function request(extra: Record<string, unknown> = {}) {
  return {
    name: 'example',
    configuration_name: 'configurations-example',
    target: { definition: 'image', groups: [{ name: 'Compute', members: [IMG1, IMG2] }], image_map: [{ source_id: IMG2, result_name: 'out' }] },
    ...extra,
  };
}

async function rejection(promise: Promise<unknown>): Promise<{ name: string; field?: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { name: string; field?: string; message: string };
  }
  throw new Error('expected a rejection');
}

describe('createSession', () => {
  it('stores a pending session with pinned layers, a UTC start time and the workflow job', async () => {
    // Arrange
    const ports = fakeCfsPorts('2026-11-26T10:00:00.789Z');
    await ports.configurations.put(storedConfiguration());
    // Act
    const created = await createSession(ports, request({ configuration_limit: 'base', tags: { owner: 'ops' } }));
    // Assert
    expect(created.status.session).toEqual({ status: 'pending', succeeded: 'none', start_time: '2026-11-26T10:00:00Z', job: 'execution-example' });
    expect(created.status.artifacts).toEqual([]);
    expect(created.status.layers).toEqual([{ name: 'base', clone_url: 'https://git.example/base.git', commit: 'a'.repeat(40), playbook: 'site.yml' }]);
    expect(created.configuration).toEqual({ name: 'configurations-example', limit: 'base' });
    expect(created.ansible).toEqual({ config: 'cfs-default-ansible-cfg', limit: '', verbosity: 0, passthrough: '' });
    expect(created.tags).toEqual({ owner: 'ops' });
    expect(ports.workflow.started).toEqual(['example']);
    expect(await ports.sessions.get('example')).toEqual(created);
  });

  it('stores the session with the job its workflow plans, in one write, when the runtime plans one', async () => {
    // Arrange
    const ports = fakeCfsPorts();
    await ports.configurations.put(storedConfiguration());
    const plannedFor: string[] = [];
    ports.workflow.plannedJob = (session) => (plannedFor.push(session.name), `planned-${session.name}`);
    const update = ports.sessions.update.bind(ports.sessions);
    let updates = 0;
    ports.sessions.update = (...args) => (updates++, update(...args));
    // Act
    const created = await createSession(ports, request());
    // Assert
    expect(plannedFor).toEqual(['example']);
    expect(ports.workflow.startedWith).toEqual([{ name: 'example', plannedJob: 'planned-example' }]);
    expect(created.status.session.job).toBe('planned-example');
    expect((await ports.sessions.get('example'))!.status.session.job).toBe('planned-example');
    expect(updates).toBe(0);
  });

  it('records the job the workflow started when it is not the planned one', async () => {
    // Arrange
    const ports = fakeCfsPorts();
    await ports.configurations.put(storedConfiguration());
    ports.workflow.plannedJob = () => 'planned-but-taken';
    // Act
    const created = await createSession(ports, request());
    // Assert
    expect(created.status.session.job).toBe('execution-example');
    expect((await ports.sessions.get('example'))!.status.session.job).toBe('execution-example');
  });

  it('keeps the pinned layers when the configuration changes afterwards', async () => {
    // Arrange
    const ports = fakeCfsPorts();
    await ports.configurations.put(storedConfiguration());
    await createSession(ports, request());
    // Act
    await ports.configurations.put({ ...storedConfiguration(), layers: [{ clone_url: 'https://git.example/other.git', playbook: 'x.yml', commit: 'c'.repeat(40) }] });
    // Assert
    const stored = await getSession(ports, 'example');
    expect(stored.status.layers.map((l) => l.commit)).toEqual(['a'.repeat(40), 'b'.repeat(40)]);
  });

  it('refuses a missing configuration with a 400 naming configuration_name', async () => {
    // Arrange
    const ports = fakeCfsPorts();
    // Act
    const error = await rejection(createSession(ports, request()));
    // Assert
    expect(error.name).toBe('ValidationError');
    expect(error.field).toBe('configuration_name');
    expect(error.message).toContain("configuration 'configurations-example' does not exist");
    expect(ports.sessions.items.size).toBe(0);
  });

  it('refuses a configuration with additional inventory or without layers', async () => {
    // Arrange
    const ports = fakeCfsPorts();
    await ports.configurations.put({ ...storedConfiguration('inv'), additional_inventory: { clone_url: 'https://git.example/inv.git', commit: 'c'.repeat(40) } });
    await ports.configurations.put({ ...storedConfiguration('empty'), layers: [] });
    // Act
    const inventory = await rejection(createSession(ports, request({ configuration_name: 'inv' })));
    const empty = await rejection(createSession(ports, request({ configuration_name: 'empty' })));
    // Assert
    expect(inventory.message).toContain('additional_inventory');
    expect(empty.message).toContain('has no layers');
  });

  it('refuses a duplicate name with a ConflictError and starts no second workflow', async () => {
    // Arrange
    const ports = fakeCfsPorts();
    await ports.configurations.put(storedConfiguration());
    await createSession(ports, request());
    // Act
    const error = await rejection(createSession(ports, request()));
    // Assert
    expect(error.name).toBe('ConflictError');
    expect(ports.workflow.started).toEqual(['example']);
  });

  it('removes the record again when the workflow cannot start, so the name can be retried', async () => {
    // Arrange
    const ports = fakeCfsPorts();
    await ports.configurations.put(storedConfiguration());
    ports.workflow.failWith = new Error('engine down');
    // Act
    const error = await rejection(createSession(ports, request()));
    // Assert
    expect(error.message).toBe('engine down');
    expect(await ports.sessions.get('example')).toBeUndefined();
  });
});

describe('a session\'s validation (checks and a boot test)', () => {
  const asked = { checks: [{ name: 'hello', command: '/usr/bin/hello' }], boot: { success_pattern: 'Reached target .*Multi-User System' } };

  it('stores it with every default filled in, and the v3 and v2 views show it as stored under status (the spec keeps the top level closed)', async () => {
    // Arrange
    const ports = fakeCfsPorts();
    await ports.configurations.put(storedConfiguration());
    // Act
    const created = await createSession(ports, request({ validation: asked }));
    // Assert
    const expected = {
      checks: [{ name: 'hello', command: '/usr/bin/hello' }],
      boot: { success_pattern: 'Reached target .*Multi-User System', kernel_parameters: 'root=/dev/vda rootfstype=squashfs ro console=ttyS0', timeout_seconds: 300, memory_mib: 1024, network: false },
    };
    expect(created.validation).toEqual(expected);
    expect((await ports.sessions.get('example'))!.validation).toEqual(expected);
    expect(sessionToV3(created).status.validation).toEqual(expected);
    expect(sessionToV2(created).status.validation).toEqual(expected);
    expect(sessionToV3(created)).not.toHaveProperty('validation');
    expect(sessionToV2(created)).not.toHaveProperty('validation');
  });

  it('stores no validation field when none is asked for, and neither view shows one', async () => {
    // Arrange
    const ports = fakeCfsPorts();
    await ports.configurations.put(storedConfiguration());
    // Act
    const created = await createSession(ports, request());
    // Assert
    expect(await ports.sessions.get('example')).not.toHaveProperty('validation');
    expect(sessionToV3(created).status).not.toHaveProperty('validation');
    expect(sessionToV2(created).status).not.toHaveProperty('validation');
  });

  it('takes the same object, spelled the same, in a v2 body and the v3 body the CLI turns into v2', async () => {
    // Arrange
    const ports = fakeCfsPorts();
    await ports.configurations.put(storedConfiguration());
    const v2 = parseOrThrow(v2SessionCreateSchema, { name: 'example', configurationName: 'configurations-example', target: request().target, validation: { checks: asked.checks } });
    // Act
    const record = await createSession(ports, v2RequestToV3(v2));
    const cliBody = v3InputToV2Input({ name: 'n', configuration_name: 'c', validation: asked });
    // Assert
    expect(record.validation).toEqual({ checks: asked.checks });
    expect(cliBody).toEqual({ name: 'n', configurationName: 'c', validation: asked });
  });

  it.each([
    ['a pattern that does not compile', { boot: { success_pattern: 'Reached (target' } }, 'validation.boot.success_pattern', 'is not a valid regular expression'],
    ['a timeout out of range', { boot: { success_pattern: 'login:', timeout_seconds: 5 } }, 'validation.boot.timeout_seconds', 'must be from 10 to 3600'],
    ['a check name that repeats', { checks: [{ name: 'a', command: 'true' }, { name: 'a', command: 'false' }] }, 'validation.checks[1].name', "repeats the check name 'a'"],
    ['an unknown field', { boot: { success_pattern: 'x', kvm: true } }, 'validation.boot.kvm', 'unknown field'],
    ['a validation that is not an object', 'boot', 'validation', 'must be an object'],
  ])('refuses %s with a ValidationError naming the field, creating nothing', async (_what, validation, field, message) => {
    // Arrange
    const ports = fakeCfsPorts();
    await ports.configurations.put(storedConfiguration());
    // Act
    const error = await rejection(createSession(ports, request({ validation })));
    // Assert
    expect(error.name).toBe('ValidationError');
    expect(error.field).toBe(field);
    expect(error.message).toContain(`${field}: ${message}`);
    expect(ports.sessions.items.size).toBe(0);
    expect(ports.workflow.started).toEqual([]);
  });

  it('keeps validation field names as they are in v2 errors', () => {
    // Act
    const error = refusal(() => parseOrThrow(v2SessionCreateSchema, { name: 'n', configurationName: 'c', validation: { boot: { success_pattern: '(' } } }));
    const renamed = renameErrorFieldToV2(error as ValidationError);
    // Assert
    expect(renamed.field).toBe('validation.boot.success_pattern');
  });
});

describe('deleteSession and getSession', () => {
  it('stops the workflow of a pending session before deleting it', async () => {
    // Arrange
    const ports = fakeCfsPorts();
    await ports.configurations.put(storedConfiguration());
    await createSession(ports, request());
    // Act
    await deleteSession(ports, 'example');
    // Assert
    expect(ports.workflow.stopped).toEqual([{ name: 'example', job: 'execution-example' }]);
    expect(await ports.sessions.get('example')).toBeUndefined();
  });

  it('deletes a complete session without stopping anything', async () => {
    // Arrange
    const ports = fakeCfsPorts();
    await ports.configurations.put(storedConfiguration());
    await createSession(ports, request());
    await ports.sessions.update('example', (s) => advanceSession(s, { status: 'complete', succeeded: 'true' }));
    // Act
    await deleteSession(ports, 'example');
    // Assert
    expect(ports.workflow.stopped).toEqual([]);
    expect(ports.sessions.items.size).toBe(0);
  });

  it('answers NotFoundError for a missing session on get and delete', async () => {
    // Arrange
    const ports = fakeCfsPorts();
    // Act
    const get = await rejection(getSession(ports, 'nope'));
    const del = await rejection(deleteSession(ports, 'nope'));
    // Assert
    expect(get.name).toBe('NotFoundError');
    expect(del.name).toBe('NotFoundError');
  });
});

describe('v2 and v3 session shapes', () => {
  it('converts a v2 create body into the v3 request and a record into the v2 view', async () => {
    // Arrange
    const ports = fakeCfsPorts();
    await ports.configurations.put(storedConfiguration());
    const v2 = parseOrThrow(v2SessionCreateSchema, {
      name: 'example',
      configurationName: 'configurations-example',
      ansibleVerbosity: 3,
      target: request().target,
    });
    // Act
    const record = await createSession(ports, v2RequestToV3(v2));
    const view = sessionToV2(record);
    // Assert
    expect(record.ansible.verbosity).toBe(3);
    expect(view).not.toHaveProperty('debug_on_failure');
    expect(view.status.session).toEqual({ job: 'execution-example', startTime: '2026-11-26T10:00:00Z', completionTime: null, status: 'pending', succeeded: 'none' });
    expect(view.status.layers).toHaveLength(2);
  });

  it('turns a v3 body into the v2 body the cray CLI would send', () => {
    // Act
    const v2 = v3InputToV2Input({ name: 'n', configuration_name: 'c', ansible_limit: 'x', target: { definition: 'image' } });
    // Assert
    expect(v2).toEqual({ name: 'n', configurationName: 'c', ansibleLimit: 'x', target: { definition: 'image' } });
    expect(() => v3InputToV2Input({ name: 'n', configuration_name: 'c', debug_on_failure: true })).toThrow('v3 field');
  });
});

describe('advanceSession', () => {
  const base = () => ({
    ...request(),
    configuration: { name: 'c', limit: '' },
    ansible: { config: '', limit: '', verbosity: 0, passthrough: '' },
    target: { definition: 'image' as const, groups: [], image_map: [] },
    tags: {},
    debug_on_failure: false,
    status: { session: { status: 'running' as const, succeeded: 'none' as const, start_time: '2026-01-01T00:00:00Z' }, artifacts: [], layers: [] },
  });

  it('moves status and succeeded forward only', () => {
    // Act
    const back = advanceSession(base(), { status: 'pending', succeeded: 'none' });
    const done = advanceSession(base(), { status: 'complete', succeeded: 'false', completion_time: '2026-01-01T01:00:00Z' });
    const notBack = advanceSession(done, { status: 'running', succeeded: 'unknown' });
    // Assert
    expect(back.status.session.status).toBe('running');
    expect(done.status.session).toMatchObject({ status: 'complete', succeeded: 'false', completion_time: '2026-01-01T01:00:00Z' });
    expect(notBack.status.session).toMatchObject({ status: 'complete', succeeded: 'false' });
    expect(advanceSession(done, { succeeded: 'true' }).status.session.succeeded).toBe('true');
  });

  it('never lets an empty value overwrite', () => {
    // Arrange
    const done = advanceSession(base(), { status: 'complete', completion_time: '2026-01-01T01:00:00Z' });
    // Act
    const again = advanceSession(done, { completion_time: '' });
    // Assert
    expect(again.status.session.completion_time).toBe('2026-01-01T01:00:00Z');
    expect(again).not.toBe(done);
  });
});
