import { describe, expect, it } from 'vitest';
import { IMG1 } from '../helpers/cfs-fakes.ts';
import { call, cfsTestAppForSuite } from './cfs-app.ts';
import { cfsResponseErrors } from './cfs-spec.ts';

const target = { definition: 'image', groups: [{ name: 'Compute', members: [IMG1] }] };
const v3Body = (name: string, validation?: unknown) => ({ name, configuration_name: 'c', target, ...(validation === undefined ? {} : { validation }) });
const v2Body = (name: string, validation?: unknown) => ({ name, configurationName: 'c', target, ...(validation === undefined ? {} : { validation }) });

const asked = {
  checks: [
    { name: 'hello', command: '/usr/bin/hello' },
    { name: 'sshd-enabled', command: 'systemctl is-enabled ssh' },
  ],
  boot: { success_pattern: 'CFS-BOOT-OK', timeout_seconds: 120 },
};
const stored = {
  checks: asked.checks,
  boot: { success_pattern: 'CFS-BOOT-OK', kernel_parameters: 'root=/dev/vda rootfstype=squashfs ro console=ttyS0', timeout_seconds: 120, memory_mib: 1024, network: false },
};

describe('a session create asking for checks and a boot test', () => {
  const t = cfsTestAppForSuite({ configuration: 'c' });

  it('is stored with its defaults and shown the same by v3 and v2, under status (the CFS spec keeps the top level closed)', async () => {
    // Act
    const created = await call(t.app, 'POST', '/apis/cfs/v3/sessions', v3Body('proved', asked));
    const v3 = await call(t.app, 'GET', '/apis/cfs/v3/sessions/proved');
    const v2 = await call(t.app, 'GET', '/apis/cfs/v2/sessions/proved');
    // Assert
    expect(created.status).toBe(201);
    expect(created.body.status.validation).toEqual(stored);
    expect(v3.body.status.validation).toEqual(stored);
    expect(v2.body.status.validation).toEqual(stored);
    expect(v3.body).not.toHaveProperty('validation');
    expect((await t.ports.sessions.get('proved'))!.validation).toEqual(stored);
    // Clients generated from the CFS spec keep working with a session that asked for proof.
    expect(await cfsResponseErrors('get', '/v3/sessions/{session_name}', 200, v3.body)).toBeUndefined();
  });

  it('is taken from a v2 body with the same field names', async () => {
    // Act
    const created = await call(t.app, 'POST', '/apis/cfs/v2/sessions', v2Body('proved-v2', asked));
    const v3 = await call(t.app, 'GET', '/apis/cfs/v3/sessions/proved-v2');
    // Assert
    expect(created.status).toBe(200);
    expect(created.body.status.validation).toEqual(stored);
    expect(v3.body.status.validation).toEqual(stored);
  });

  it('leaves a session without it exactly as CFS shows one: no validation field, valid against the CFS spec', async () => {
    // Act
    await call(t.app, 'POST', '/apis/cfs/v3/sessions', v3Body('plain'));
    const v3 = await call(t.app, 'GET', '/apis/cfs/v3/sessions/plain');
    const v2 = await call(t.app, 'GET', '/apis/cfs/v2/sessions/plain');
    // Assert
    expect(v3.body.status).not.toHaveProperty('validation');
    expect(v2.body.status).not.toHaveProperty('validation');
    expect(await t.ports.sessions.get('plain')).not.toHaveProperty('validation');
    expect(await cfsResponseErrors('get', '/v3/sessions/{session_name}', 200, v3.body)).toBeUndefined();
    expect(await cfsResponseErrors('get', '/v2/sessions/{session_name}', 200, v2.body)).toBeUndefined();
  });

  it.each([
    ['v3', 'a pattern that does not compile', { boot: { success_pattern: 'Reached (target' } }, 'validation.boot.success_pattern', /not a valid regular expression/],
    ['v3', 'a timeout out of range', { boot: { success_pattern: 'x', timeout_seconds: 86400 } }, 'validation.boot.timeout_seconds', /must be from 10 to 3600/],
    ['v3', 'a check name that repeats', { checks: [{ name: 'a', command: 'true' }, { name: 'a', command: 'true' }] }, 'validation.checks[1].name', /repeats the check name 'a'/],
    ['v3', 'memory out of range', { boot: { success_pattern: 'x', memory_mib: 64 } }, 'validation.boot.memory_mib', /must be from 256 to 16384/],
    ['v2', 'a pattern that does not compile', { boot: { success_pattern: '*' } }, 'validation.boot.success_pattern', /not a valid regular expression/],
    ['v2', 'a check without a command', { checks: [{ name: 'a' }] }, 'validation.checks[0].command', /is required/],
  ])('answers %s %s with 400 problem+json naming the field, creating nothing', async (version, _what, validation, field, message) => {
    // Arrange
    const name = `refused-${version}`;
    const body = version === 'v3' ? v3Body(name, validation) : v2Body(name, validation);
    // Act
    const res = await call(t.app, 'POST', `/apis/cfs/${version}/sessions`, body);
    // Assert
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.body.field).toBe(field);
    expect(res.body.detail.startsWith(`${field}: `)).toBe(true);
    expect(res.body.detail).toMatch(message);
    expect((await call(t.app, 'GET', `/apis/cfs/v3/sessions/${name}`)).status).toBe(404);
  });

  it('is checked by a session plan as a create would check it', async () => {
    // Act
    const res = await call(t.app, 'POST', '/apis/cfs/v3/sessions/plan', v3Body('planned', { boot: { success_pattern: '[' } }));
    // Assert
    expect(res.status).toBe(400);
    expect(res.body.field).toBe('validation.boot.success_pattern');
  });
});
