import { z } from 'zod';
import { configurationNameProblem } from '../configurations/configuration-rules.ts';
import { validationSpecSchema } from './validation-spec.ts';

/**
 * The CFS session create requests, v3 (snake_case, canonical) and v2 (camelCase), closed at
 * every level: a field the spec does not define is a 400, never silently dropped. Structure
 * and single-field limits live here (so issue 3 can derive the OpenAPI document from them);
 * rules that span fields live in session-rules.ts.
 */

/** Kubernetes object name, as CFS requires (session names become job names there). */
export const SESSION_NAME_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** CFS's `ansible_limit` pattern: one ansible-playbook `--limit` word. */
export const ANSIBLE_LIMIT_PATTERN = /^[^\s;]*$/;
/**
 * Ansible splits a limit on ',' and ':' and reads any part starting with '@' as a file of host
 * names (`--limit @/etc/shadow` printed the file); host names and groups never contain '@', so
 * none is allowed anywhere.
 */
export const ANSIBLE_LIMIT_FILE = /@/;

export const TARGET_DEFINITIONS = ['image', 'spec', 'repo', 'dynamic'] as const;

export const sessionNameSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(45, 'must be at most 45 characters')
  .regex(
    SESSION_NAME_PATTERN,
    "must be a Kubernetes name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit",
  );

export const targetGroupSchema = z.strictObject({
  name: z.string(),
  members: z.array(z.string()),
});

export const imageMapEntrySchema = z.strictObject({
  source_id: z.string(),
  result_name: z.string(),
});

/** Same in v2 and v3: CFS keeps `image_map`, `source_id` and `result_name` snake_case in both. */
export const sessionTargetSchema = z.strictObject({
  definition: z.enum(TARGET_DEFINITIONS, { error: `must be one of ${TARGET_DEFINITIONS.join(', ')}` }).default('dynamic'),
  groups: z.array(targetGroupSchema).default([]),
  image_map: z.array(imageMapEntrySchema).default([]),
});

/** The configuration a session applies, named as a configuration may be named (configuration-rules.ts). */
const configurationNameSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(60, 'must be at most 60 characters')
  .superRefine((name, ctx) => {
    const problem = name.length >= 1 && name.length <= 60 ? configurationNameProblem(name) : undefined;
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
const verbositySchema = z.int('must be an integer from 0 to 4').min(0, 'must be from 0 to 4').max(4, 'must be from 0 to 4');
const ansibleLimitSchema = z
  .string()
  .regex(ANSIBLE_LIMIT_PATTERN, "must not contain whitespace or ';'")
  .refine((limit) => !limit.startsWith('-'), "must not start with '-' (it would be read as an option)")
  .refine((limit) => !ANSIBLE_LIMIT_FILE.test(limit), "must not name a file: Ansible reads a pattern starting with '@' as a file of host names");
const tagsSchema = z.record(z.string(), z.string());
/** The same object, snake_case inside, in v2 and v3 (CFS has no such field, so there is no v2 spelling to keep). */
const validationSchema = validationSpecSchema
  .optional()
  .meta({
    description:
      "Extension: prove each result before it is registered: `checks` run with /bin/sh in each customized root after the last layer (a non-zero exit fails the image), and `boot` boots each packed result in a virtual machine until a console line matches `success_pattern`. Absent: neither (CFS clients never send it).",
  });

/** `POST /apis/cfs/v3/sessions` (V3SessionCreate). */
export const v3SessionCreateSchema = z.strictObject({
  name: sessionNameSchema,
  configuration_name: configurationNameSchema,
  configuration_limit: z.string().default(''),
  ansible_limit: ansibleLimitSchema.default(''),
  ansible_config: z.string().default(''),
  ansible_verbosity: verbositySchema.default(0),
  ansible_passthrough: z.string().default(''),
  target: sessionTargetSchema.default({ definition: 'dynamic', groups: [], image_map: [] }),
  tags: tagsSchema.default({}),
  debug_on_failure: z.boolean().default(false),
  validation: validationSchema,
});

/** `POST /apis/cfs/v2/sessions` (V2SessionCreate): camelCase, no `debug_on_failure`. */
export const v2SessionCreateSchema = z.strictObject({
  name: sessionNameSchema,
  configurationName: configurationNameSchema,
  configurationLimit: z.string().default(''),
  ansibleLimit: ansibleLimitSchema.default(''),
  ansibleConfig: z.string().default(''),
  ansibleVerbosity: verbositySchema.default(0),
  ansiblePassthrough: z.string().default(''),
  target: sessionTargetSchema.default({ definition: 'dynamic', groups: [], image_map: [] }),
  tags: tagsSchema.default({}),
  validation: validationSchema,
});

/** A parsed v3 create request, defaults applied: what the create use case takes. */
export type SessionCreateRequest = z.output<typeof v3SessionCreateSchema>;
/** What a client may send to v3 (defaults not yet applied). */
export type V3SessionCreateInput = z.input<typeof v3SessionCreateSchema>;
export type V2SessionCreateRequest = z.output<typeof v2SessionCreateSchema>;
export type V2SessionCreateInput = z.input<typeof v2SessionCreateSchema>;
