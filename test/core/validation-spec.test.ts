import { describe, expect, it } from 'vitest';
import {
  DEFAULT_KERNEL_PARAMETERS,
  parseValidationSpec,
  validationFromCliOptions,
  type ValidationCliOptions,
} from '../../functions/core/sessions/validation-spec.ts';
import { refusal } from '../helpers/refusal.ts';

/** `work` throws a ValidationError whose field is `field` and whose message starts with it and matches `message`. */
function expectRefusedNaming(work: () => unknown, field: string, message: RegExp): void {
  const error = refusal(work);
  expect(error.name).toBe('ValidationError');
  expect(error.field).toBe(field);
  expect(error.message.startsWith(`${field}: `)).toBe(true);
  expect(error.message).toMatch(message);
}

describe('the validation spec', () => {
  it('is absent when the body has none, so images that cannot boot keep working', () => {
    // Act
    const spec = parseValidationSpec(undefined);
    // Assert
    expect(spec).toBeUndefined();
  });

  it('fills in the boot defaults: the squashfs command line, 300 s, 1024 MiB, no network', () => {
    // Act
    const spec = parseValidationSpec({ boot: { success_pattern: 'login:' } });
    // Assert
    expect(spec).toEqual({
      checks: [],
      boot: { success_pattern: 'login:', kernel_parameters: DEFAULT_KERNEL_PARAMETERS, timeout_seconds: 300, memory_mib: 1024, network: false },
    });
    expect(DEFAULT_KERNEL_PARAMETERS).toBe('root=/dev/vda rootfstype=squashfs ro console=ttyS0');
  });

  it('keeps the issue example as given', () => {
    // Arrange
    const body = {
      checks: [{ name: 'hello', command: '/usr/bin/hello' }],
      boot: { success_pattern: 'Reached target Multi-User System', kernel_parameters: 'root=live:/dev/vda rd.live.image', timeout_seconds: 600, memory_mib: 2048, network: true },
    };
    // Act
    const spec = parseValidationSpec(body);
    // Assert
    expect(spec).toEqual(body);
  });

  it.each([
    [{ boot: { success_pattern: 'Reached (target' } }, 'validation.boot.success_pattern', /not a valid regular expression/],
    [{ boot: { success_pattern: '' } }, 'validation.boot.success_pattern', /must not be empty/],
    [{ boot: { success_pattern: 'x'.repeat(513) } }, 'validation.boot.success_pattern', /at most 512/],
    [{ boot: { success_pattern: 'x', timeout_seconds: 9 } }, 'validation.boot.timeout_seconds', /from 10 to 3600/],
    [{ boot: { success_pattern: 'x', timeout_seconds: 3601 } }, 'validation.boot.timeout_seconds', /from 10 to 3600/],
    [{ boot: { success_pattern: 'x', timeout_seconds: 30.5 } }, 'validation.boot.timeout_seconds', /whole number/],
    [{ boot: { success_pattern: 'x', memory_mib: 255 } }, 'validation.boot.memory_mib', /from 256 to 16384/],
    [{ boot: { success_pattern: 'x', memory_mib: 16385 } }, 'validation.boot.memory_mib', /from 256 to 16384/],
    [{ boot: { success_pattern: 'x', kernel_parameters: ' ' } }, 'validation.boot.kernel_parameters', /must not be empty/],
    [{ boot: { success_pattern: 'x', kernel_parameters: 'root=/dev/vda\ninit=/bin/sh' } }, 'validation.boot.kernel_parameters', /one line/],
    [{ boot: { success_pattern: 'x', network: 'yes' } }, 'validation.boot.network', /must be a boolean/],
    [{ boot: { success_pattern: 'x', memory: 512 } }, 'validation.boot.memory', /unknown field/],
    [{ boot: {} }, 'validation.boot.success_pattern', /is required/],
    [{ checks: [{ name: 'a', command: 'true' }, { name: 'a', command: 'false' }] }, 'validation.checks[1].name', /repeats the check name 'a'/],
    [{ checks: [{ name: 'ok', command: 'true' }, { name: 'bad name', command: 'true' }] }, 'validation.checks[1].name', /letter or digit/],
    [{ checks: [{ name: '-x', command: 'true' }] }, 'validation.checks[0].name', /letter or digit/],
    [{ checks: [{ name: 'empty', command: '  ' }] }, 'validation.checks[0].command', /must not be empty/],
    [{ checks: [{ name: 'long', command: 'x'.repeat(4097) }] }, 'validation.checks[0].command', /at most 4096/],
    [{ checks: Array.from({ length: 33 }, (_, i) => ({ name: `c${i}`, command: 'true' })) }, 'validation.checks', /at most 32/],
    [{ checks: 'true' }, 'validation.checks', /must be an array/],
  ])('refuses %j naming the exact field', (body, field, message) => {
    // Act, Assert
    expectRefusedNaming(() => parseValidationSpec(body), field, message);
  });
});

describe('the CLI options of the validation spec', () => {
  it('gives nothing when no option was used', () => {
    // Act
    const body = validationFromCliOptions({});
    // Assert
    expect(body).toBeUndefined();
  });

  it('turns repeated --check NAME=COMMAND into checks, keeping every = after the first in the command', () => {
    // Act
    const body = validationFromCliOptions({ check: ['hello=/usr/bin/hello', 'env=test "$(printenv A)" = b=c'] });
    // Assert
    expect(body).toEqual({ checks: [{ name: 'hello', command: '/usr/bin/hello' }, { name: 'env', command: 'test "$(printenv A)" = b=c' }] });
  });

  it('turns --boot-check, --boot-parameters and --boot-timeout into the boot object', () => {
    // Act
    const body = validationFromCliOptions({ bootCheck: 'login:', bootParameters: 'root=live:/dev/vda rd.live.image', bootTimeout: '120' });
    // Assert
    expect(body).toEqual({ boot: { success_pattern: 'login:', kernel_parameters: 'root=live:/dev/vda rd.live.image', timeout_seconds: 120 } });
    expect(parseValidationSpec(body)?.boot?.memory_mib).toBe(1024);
  });

  it.each<[ValidationCliOptions, string, RegExp]>([
    [{ check: ['no-equals'] }, '--check', /takes NAME=COMMAND, not 'no-equals'/],
    [{ check: ['=true'] }, '--check', /takes NAME=COMMAND/],
    [{ check: ['a=true', 'a=false'] }, '--check', /check 2's name: repeats the check name 'a'/],
    [{ check: ['a='] }, '--check', /check 1's command: must not be empty/],
    [{ bootCheck: '(' }, '--boot-check', /not a valid regular expression/],
    [{ bootTimeout: '60' }, '--boot-timeout', /needs --boot-check/],
    [{ bootParameters: 'root=/dev/vdb' }, '--boot-parameters', /needs --boot-check/],
    [{ bootCheck: 'x', bootTimeout: '1m' }, '--boot-timeout', /whole number of seconds, not '1m'/],
    [{ bootCheck: 'x', bootTimeout: '5' }, '--boot-timeout', /from 10 to 3600/],
    [{ bootCheck: 'x', bootParameters: '' }, '--boot-parameters', /must not be empty/],
  ])('refuses %j naming the option', (options, option, message) => {
    // Act, Assert
    expectRefusedNaming(() => validationFromCliOptions(options), option, message);
  });
});
