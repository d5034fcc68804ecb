import { afterEach, describe, expect, it } from 'vitest';
import { checkAutomation } from '../../functions/core/automations/automation-rules.ts';
import { deleteAutomation, getAutomation, putAutomation } from '../../functions/core/automations/automation-use-cases.ts';
import { renderResultName } from '../../functions/core/automations/result-name.ts';
import { automationSessionName } from '../../functions/core/automations/session-name.ts';
import { SESSION_NAME_PATTERN } from '../../functions/core/sessions/session-schemas.ts';
import type { ConfigurationRecord } from '../../functions/core/model/configuration.ts';
import type { AutomationRecord } from '../../functions/core/automations/automation-record.ts';
import { automationFakes, REPO, type AutomationFakes } from './automation-fakes.ts';

const configuration: ConfigurationRecord = {
  name: 'compute-config',
  last_updated: '2026-11-26T09:00:00Z',
  layers: [{ name: 'site', clone_url: REPO, playbook: 'site.yml', commit: 'a'.repeat(40), branch: 'main' }],
};

const body = {
  configuration_name: 'compute-config',
  source: { name_pattern: 'compute-base-*', arch: 'x86_64' },
  groups: ['Compute'],
  result_name_template: '{source_name}_{automation}',
  on_image_registered: true,
  schedule: { expression: 'cron(0 3 * * ? *)', timezone: 'UTC' },
  only_if_changed: true,
};

let fakes: AutomationFakes | undefined;
afterEach(() => fakes?.dispose());

describe('automation validation', () => {
  it('accepts the issue example and fills the defaults', () => {
    // Arrange / Act
    const spec = checkAutomation('compute', body, configuration);
    // Assert
    expect(spec).toMatchObject({ ...body, configuration_limit: '', ansible_limit: '', ansible_verbosity: 0, ansible_passthrough: '', debug_on_failure: false });
    expect(checkAutomation('c', { configuration_name: 'compute-config', source: { name_pattern: 'x' }, groups: ['G'] }, configuration)).toMatchObject({
      result_name_template: '{source_name}_{automation}',
      on_image_registered: false,
      only_if_changed: true,
    });
  });

  it.each<[string, string, Record<string, unknown>, ConfigurationRecord | undefined]>([
    ['an unknown configuration', "configuration_name: configuration 'compute-config' does not exist", body, undefined],
    ['a bad pattern', "source.name_pattern: not a glob pattern: 'compute-[0-9' has a '[' without its closing ']'", { ...body, source: { name_pattern: 'compute-[0-9' } }, configuration],
    ['a bad expression', "schedule.expression: 'cron(0 3 * * *)' is not an EventBridge Scheduler expression", { ...body, schedule: { expression: 'cron(0 3 * * *)' } }, configuration],
    ['an unknown placeholder', "result_name_template: unknown placeholder '{image}'", { ...body, result_name_template: '{image}-x' }, configuration],
    ['a result name with a slash', "result_name_template: renders 'a/source', which is not a valid image name", { ...body, result_name_template: 'a/{source_name}' }, configuration],
    ['a reserved group', "groups[0]: 'cfs_image' is reserved", { ...body, groups: ['cfs_image'] }, configuration],
    ['no groups', 'groups: must list at least one group', { ...body, groups: [] }, configuration],
    ['a bad passthrough', "ansible_passthrough: option '--become' is not allowed", { ...body, ansible_passthrough: '--become' }, configuration],
    ['extra vars from a file', 'ansible_passthrough: extra vars from files (@FILE) are not allowed', { ...body, ansible_passthrough: '-e @/etc/shadow' }, configuration],
    ['a tag value that is an option', "ansible_passthrough: the value of '--tags' must not start with '-' or '@'", { ...body, ansible_passthrough: '--tags=--list-hosts' }, configuration],
    ['a limit that names a file', 'ansible_limit: must not name a file', { ...body, ansible_limit: 'Compute,@/etc/shadow' }, configuration],
    ['an unknown layer in the configuration limit', "configuration_limit: configuration 'compute-config' has no layer named 'nope'", { ...body, configuration_limit: 'nope' }, configuration],
    ['an unknown field', 'source.path: unknown field', { ...body, source: { name_pattern: 'x', path: '/' } }, configuration],
  ])('refuses %s with a clear error', (_what, message, input, config) => {
    // Arrange / Act
    const attempt = () => checkAutomation('compute', input, config);
    // Assert
    expect(attempt).toThrowError(message);
  });

  it('takes the session\'s validation object, filling its defaults, and stores none when it is absent', () => {
    // Act
    const spec = checkAutomation('compute', { ...body, validation: { checks: [{ name: 'hello', command: 'hello' }], boot: { success_pattern: 'CFS-BOOT-OK' } } }, configuration);
    const plain = checkAutomation('compute', body, configuration);
    // Assert
    expect(spec.validation).toEqual({
      checks: [{ name: 'hello', command: 'hello' }],
      boot: { success_pattern: 'CFS-BOOT-OK', kernel_parameters: 'root=/dev/vda rootfstype=squashfs ro console=ttyS0', timeout_seconds: 300, memory_mib: 1024, network: false },
    });
    expect(plain.validation).toBeUndefined();
  });

  it.each([
    [{ boot: { success_pattern: 'Reached (target' } }, 'validation.boot.success_pattern: is not a valid regular expression'],
    [{ boot: { success_pattern: 'x', timeout_seconds: 0 } }, 'validation.boot.timeout_seconds: must be from 10 to 3600'],
    [{ checks: [{ name: 'a', command: 'true' }, { name: 'a', command: 'true' }] }, "validation.checks[1].name: repeats the check name 'a'"],
    [{ boot: { success_pattern: 'x' }, vm: {} }, 'validation.vm: unknown field'],
  ])('refuses the validation %j naming its field, as a session create would', (validation, message) => {
    // Act
    const attempt = () => checkAutomation('compute', { ...body, validation }, configuration);
    // Assert
    expect(attempt).toThrowError(message);
  });

  it('refuses a name that cannot go into a session name', () => {
    // Arrange / Act
    const attempt = () => checkAutomation('Compute_Nightly', body, configuration);
    // Assert
    expect(attempt).toThrowError("name: 'Compute_Nightly' is not an automation name");
  });
});

describe('result names and session names', () => {
  it('renders every placeholder and literal braces', () => {
    // Arrange / Act
    const name = renderResultName('{{x}}{source_name}_{automation}_{date}_{fingerprint}', {
      source_name: 'compute-base-1',
      automation: 'nightly',
      date: '20261126',
      fingerprint: '0123456789ab',
    });
    // Assert
    expect(name).toBe('{x}compute-base-1_nightly_20261126_0123456789ab');
  });

  it('derives a valid session name of at most 45 characters from the automation and the fingerprint', () => {
    // Arrange
    const value = 'f'.repeat(64);
    const long = 'a-very-long-automation-name-that-goes-on-and-on-forever';
    // Act
    const short = automationSessionName('compute', value);
    const longName = automationSessionName(long, value);
    const retry = automationSessionName(long, value, 12);
    const other = automationSessionName(`${long}-2`, value);
    // Assert
    expect(short).toBe('compute-ffffffffffff');
    for (const name of [short, longName, retry, other]) {
      expect(name.length).toBeLessThanOrEqual(45);
      expect(name).toMatch(SESSION_NAME_PATTERN);
    }
    expect(retry).toBe(`${longName}-12`);
    expect(other).not.toBe(longName);
    expect(automationSessionName('compute', value)).toBe(short);
  });
});

describe('automation use cases', () => {
  it('stores, replaces (keeping history and the last build), reads and deletes an automation, arming and disarming its schedule', async () => {
    // Arrange
    fakes = automationFakes();
    await fakes.configurations.put(configuration);
    const armed: string[] = [];
    const disarmed: string[] = [];
    const ports = { ...fakes, schedules: { armed: async (a: AutomationRecord) => void armed.push(`${a.name}:${a.schedule?.expression ?? 'none'}`), disarmed: async (n: string) => void disarmed.push(n) } };
    // Act
    const created = await putAutomation(ports, 'compute', body);
    await fakes.automations.update('compute', (a) => ({ ...a, history: [{ time: 't', trigger: 'run', outcome: 'skipped', reason: 'r' }] }));
    fakes.setNow('2026-11-27T10:00:00Z');
    const { schedule: _dropped, ...withoutSchedule } = body;
    const replaced = await putAutomation(ports, 'compute', withoutSchedule);
    const read = await getAutomation(ports, 'compute');
    await deleteAutomation(ports, 'compute');
    // Assert
    expect(created).toMatchObject({ name: 'compute', created: '2026-11-26T10:00:00Z', history: [] });
    expect(replaced.schedule).toBeUndefined();
    expect(read).toMatchObject({ created: '2026-11-26T10:00:00Z', last_updated: '2026-11-27T10:00:00Z', history: [{ reason: 'r' }] });
    expect(armed).toEqual(['compute:cron(0 3 * * ? *)', 'compute:none']);
    expect(disarmed).toEqual(['compute']);
    await expect(getAutomation(ports, 'compute')).rejects.toThrowError("automation 'compute' does not exist");
    await expect(deleteAutomation(ports, 'compute')).rejects.toThrowError("automation 'compute' does not exist");
  });
});
