import { z } from 'zod';
import { ValidationError } from '../errors.ts';
import { parseOrThrow } from './validation.ts';

/**
 * The opt-in proof a session (or every session of an automation) asks for before its results are
 * registered (issue 18): commands run inside each customized root, and a boot of each packed
 * result in a virtual machine until its console prints the user's pattern. No `validation`: no
 * checks and no boot, so images that are not bootable (the demo's samples) keep working. CFS
 * clients never send it; it extends the CFS body.
 */

/** The kernel command line when none is given: a squashfs root on the first virtio disk, the console on the serial port the test reads. */
export const DEFAULT_KERNEL_PARAMETERS = 'root=/dev/vda rootfstype=squashfs ro console=ttyS0';

/** How long one check may run in one root before its sandbox is killed (the runner's limit; the budget counts it). */
export const CHECK_TIMEOUT_SECONDS = 300;

/**
 * Bounds, chosen so a mistake is caught at create time rather than after a long session:
 * - timeout 10..3600 s: a real boot on TCG takes tens of seconds (under 10 s cannot be met), and
 *   a gate that waits longer than an hour per image is a stuck guest, not a slow one;
 * - memory 256..16384 MiB: below 256 a distribution kernel and initramfs do not unpack; the
 *   runner task has 16 GiB by default and needs room for itself;
 * - at most 32 checks, names of 1..63 simple characters, commands of at most 4096 characters;
 * - a pattern of at most 512 characters (it is run against every console line: kept short so a
 *   pathological one cannot cost much), kernel parameters of at most 2048 (x86's command line size).
 */
export const VALIDATION_LIMITS = {
  timeoutSeconds: { min: 10, max: 3600, default: 300 },
  memoryMib: { min: 256, max: 16384, default: 1024 },
  checks: 32,
  commandLength: 4096,
  patternLength: 512,
  kernelParametersLength: 2048,
} as const;

/** A check's name: a letter or digit first, then letters, digits, `.`, `_` or `-` (it names a log file). */
export const CHECK_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Whether `pattern` compiles as the JavaScript regular expression the boot test matches lines with; the engine's message when not. */
export function regexProblem(pattern: string): string | undefined {
  try {
    new RegExp(pattern);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** A whole number of `unit` within `range`'s bounds (one message names both), `range.default` when absent. */
function wholeNumberIn(range: { min: number; max: number; default: number }, unit: string) {
  const within = `must be from ${range.min} to ${range.max}`;
  return z.number().int({ error: `must be a whole number of ${unit}` }).min(range.min, { error: within }).max(range.max, { error: within }).default(range.default);
}

const checkSchema = z
  .object({
    name: z.string().regex(CHECK_NAME_PATTERN, {
      error: `must start with a letter or digit and hold only letters, digits, '.', '_' and '-' (at most 63 characters)`,
    }),
    command: z
      .string()
      .refine((c) => c.trim() !== '', { error: 'must not be empty' })
      .refine((c) => c.length <= VALIDATION_LIMITS.commandLength, { error: `must be at most ${VALIDATION_LIMITS.commandLength} characters` })
      .refine((c) => !c.includes('\0'), { error: 'must not contain a NUL character' })
      .meta({ minLength: 1, maxLength: VALIDATION_LIMITS.commandLength, pattern: '^[^\\u0000]*\\S[^\\u0000]*$' }),
  })
  .strict();

const bootSchema = z
  .object({
    success_pattern: z
      .string()
      .refine((p) => p !== '', { error: 'must not be empty (it would match the first console line)' })
      .refine((p) => p.length <= VALIDATION_LIMITS.patternLength, { error: `must be at most ${VALIDATION_LIMITS.patternLength} characters` })
      .superRefine((p, ctx) => {
        const problem = regexProblem(p);
        if (problem) ctx.addIssue({ code: 'custom', message: `is not a valid regular expression: ${problem}` });
      })
      .meta({ minLength: 1, maxLength: VALIDATION_LIMITS.patternLength, format: 'regex' }),
    kernel_parameters: z
      .string()
      .refine((p) => p.trim() !== '', { error: 'must not be empty' })
      .refine((p) => p.length <= VALIDATION_LIMITS.kernelParametersLength, { error: `must be at most ${VALIDATION_LIMITS.kernelParametersLength} characters` })
      .refine((p) => !/[\0\r\n]/.test(p), { error: 'must be one line' })
      .meta({ minLength: 1, maxLength: VALIDATION_LIMITS.kernelParametersLength, pattern: '^[^\\u0000\\r\\n]*\\S[^\\u0000\\r\\n]*$' })
      .default(DEFAULT_KERNEL_PARAMETERS),
    timeout_seconds: wholeNumberIn(VALIDATION_LIMITS.timeoutSeconds, 'seconds'),
    memory_mib: wholeNumberIn(VALIDATION_LIMITS.memoryMib, 'MiB'),
    network: z.boolean().default(false),
  })
  .strict();

/** The `validation` object of a session or automation body, as zod checks it (defaults filled in). */
export const validationSpecSchema = z
  .object({
    checks: z
      .array(checkSchema)
      .max(VALIDATION_LIMITS.checks, { error: `must hold at most ${VALIDATION_LIMITS.checks} checks` })
      .superRefine((checks, ctx) => {
        const seen = new Set<string>();
        for (const [i, check] of checks.entries()) {
          if (seen.has(check.name)) ctx.addIssue({ code: 'custom', message: `repeats the check name '${check.name}'`, path: [i, 'name'] });
          seen.add(check.name);
        }
      })
      .default([]),
    boot: bootSchema.optional(),
  })
  .strict();

/** A session's validation, every default filled in. */
export type ValidationSpec = z.output<typeof validationSpecSchema>;
/** The boot test's settings. */
export type BootSpec = NonNullable<ValidationSpec['boot']>;
/** One check run in the customized root. */
export type CheckSpec = ValidationSpec['checks'][number];

/**
 * Checks a body's `validation` (undefined when absent: nothing to prove) and fills in its
 * defaults; the first problem is a ValidationError naming the exact field
 * (`validation.boot.success_pattern`, `validation.checks[1].name`).
 */
export function parseValidationSpec(input: unknown, prefix = 'validation'): ValidationSpec | undefined {
  if (input === undefined) return undefined;
  return parseOrThrow(validationSpecSchema, input, prefix);
}

/** The KVM probe's bound per run (kvm-probe.ts waits 5 s), rounded up with room for starting QEMU. */
const PROBE_ALLOWANCE_SECONDS = 30;

/**
 * The longest the proof of `images` results can take: every check at its 300 s limit in every
 * root, and every boot at its timeout, plus the accelerator probe. Added to the runner's budget,
 * so a session that asked for proof is not stopped by the budget meant for its layers.
 */
export function validationBudgetSeconds(validation: ValidationSpec | undefined, images: number): number {
  if (!validation) return 0;
  const checks = validation.checks.length * CHECK_TIMEOUT_SECONDS * images;
  const boots = validation.boot ? validation.boot.timeout_seconds * images + PROBE_ALLOWANCE_SECONDS : 0;
  return checks + boots;
}

/** What the CLI's options give (commander's names for them). */
export interface ValidationCliOptions {
  /** `--check NAME=COMMAND`, repeatable. */
  check?: string[];
  /** `--boot-check REGEX`. */
  bootCheck?: string;
  /** `--boot-parameters STRING`. */
  bootParameters?: string;
  /** `--boot-timeout SECONDS`. */
  bootTimeout?: string;
}

/** The CLI option each spec field comes from, so a refusal names what the user typed. */
function optionFor(field: string | undefined): string {
  if (field?.startsWith('validation.checks')) return '--check';
  if (field === 'validation.boot.kernel_parameters') return '--boot-parameters';
  if (field === 'validation.boot.timeout_seconds') return '--boot-timeout';
  return '--boot-check';
}

/**
 * The `validation` body `cfs sessions create` sends for its options, or undefined when none was
 * given. `--boot-parameters` and `--boot-timeout` need `--boot-check` (a boot without a pattern
 * has nothing to pass on). The result is checked with the same schema the server uses, and a
 * refusal names the option (`--check: ...`), as a ValidationError whose field is the option.
 */
export function validationFromCliOptions(options: ValidationCliOptions): { checks?: Array<{ name: string; command: string }>; boot?: Record<string, unknown> } | undefined {
  const checks = (options.check ?? []).map((text) => {
    const equals = text.indexOf('=');
    if (equals <= 0) throw new ValidationError(`--check: takes NAME=COMMAND, not '${text}'`, '--check');
    return { name: text.slice(0, equals), command: text.slice(equals + 1) };
  });
  if (options.bootCheck === undefined && (options.bootParameters !== undefined || options.bootTimeout !== undefined)) {
    const given = options.bootParameters !== undefined ? '--boot-parameters' : '--boot-timeout';
    throw new ValidationError(`${given}: needs --boot-check REGEX (the console line that proves the boot)`, given);
  }
  let boot: Record<string, unknown> | undefined;
  if (options.bootCheck !== undefined) {
    boot = { success_pattern: options.bootCheck };
    if (options.bootParameters !== undefined) boot.kernel_parameters = options.bootParameters;
    if (options.bootTimeout !== undefined) {
      if (!/^\d+$/.test(options.bootTimeout.trim())) throw new ValidationError(`--boot-timeout: takes a whole number of seconds, not '${options.bootTimeout}'`, '--boot-timeout');
      boot.timeout_seconds = Number(options.bootTimeout.trim());
    }
  }
  if (checks.length === 0 && boot === undefined) return undefined;
  const body = { ...(checks.length > 0 ? { checks } : {}), ...(boot ? { boot } : {}) };
  try {
    parseValidationSpec(body);
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    const option = optionFor(error.field);
    throw new ValidationError(`${option}: ${error.message.replace(/^validation\.checks\[(\d+)\]\./, (_, i: string) => `check ${Number(i) + 1}'s `).replace(/^validation\.boot\./, '')}`, option);
  }
  return body;
}
