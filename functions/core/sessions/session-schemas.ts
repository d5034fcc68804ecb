import { z } from 'zod';
import { configurationNameProblem } from '../configurations/configuration-rules.ts';
import { IMAGE_NAME_PATTERN } from '../images/schemas.ts';
import { DEFAULT_ANSIBLE_CONFIG, GROUP_NAME_PATTERN, RESERVED_GROUP_NAMES } from './session-rules.ts';
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

/*
 * The target's single-field rules are checked by session-rules.ts (with its messages); the
 * `.meta` below states them in the OpenAPI document from the same constants, and the
 * generated-requests test proves the two agree. Cross-field rules (sources in a group, names
 * used once) stay out of the document.
 */
const UUID_JSON_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
const imageIdSchema = z.string().meta({ pattern: UUID_JSON_PATTERN, description: 'An IMS image ID (a UUID).' });

export const targetGroupSchema = z.strictObject({
  name: z.string().meta({
    pattern: `^(?!(?:${RESERVED_GROUP_NAMES.join('|')})$)${GROUP_NAME_PATTERN.source.slice(1)}`,
    description: `An Ansible group name (letters, digits and '_', not starting with a digit), not ${RESERVED_GROUP_NAMES.join(', ')}; each group once.`,
  }),
  members: z.array(imageIdSchema).meta({ minItems: 1 }),
});

export const imageMapEntrySchema = z.strictObject({
  source_id: imageIdSchema.meta({ description: 'An image ID of one of the groups (each mapped once).' }),
  result_name: z.string().meta({ minLength: 1, maxLength: 255, pattern: IMAGE_NAME_PATTERN.source, description: 'The result image name (an IMS image name; each used once).' }),
});

/** Same in v2 and v3: CFS keeps `image_map`, `source_id` and `result_name` snake_case in both. */
export const sessionTargetSchema = z
  .strictObject({
    // CFS's default, `dynamic`, is refused (image customization only), so the document states `image` alone.
    definition: z
      .enum(TARGET_DEFINITIONS, { error: `must be one of ${TARGET_DEFINITIONS.join(', ')}` })
      .default('dynamic')
      .meta({ enum: ['image'], default: undefined, description: "Only 'image' is served (CFS's other definitions are refused)." }),
    groups: z.array(targetGroupSchema).default([]).meta({ minItems: 1, default: undefined }),
    image_map: z.array(imageMapEntrySchema).default([]),
  })
  .meta({ required: ['definition', 'groups'] });

/**
 * configurationNameProblem's rule as a pattern, for the OpenAPI document: no control or format
 * characters, line separators, '/' or '\\', not '.', no '..' (a test checks the two agree).
 */
export const CONFIGURATION_NAME_PATTERN = /^(?!\.$)(?!.*\.\.)[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}\/\\]+$/u;

/** A configuration's name (a session's configuration_name, the `{id}` of a configuration PUT), as configuration-rules.ts allows it. */
export const configurationNameSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(60, 'must be at most 60 characters')
  .superRefine((name, ctx) => {
    const problem = name.length >= 1 && name.length <= 60 ? configurationNameProblem(name) : undefined;
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .regex(CONFIGURATION_NAME_PATTERN, "must not contain control characters, line breaks, '/' or '\\', or be '.' or contain '..'");
const verbositySchema = z.int('must be an integer from 0 to 4').min(0, 'must be from 0 to 4').max(4, 'must be from 0 to 4');
const ansibleLimitSchema = z
  .string()
  .regex(ANSIBLE_LIMIT_PATTERN, "must not contain whitespace or ';'")
  .refine((limit) => !limit.startsWith('-'), "must not start with '-' (it would be read as an option)")
  .refine((limit) => !ANSIBLE_LIMIT_FILE.test(limit), "must not name a file: Ansible reads a pattern starting with '@' as a file of host names")
  // The three checks above as one pattern, for the document.
  .meta({ pattern: "^(?!-)[^\\s;@]*$" });
/** Only the default configuration is served (session-rules.ts). */
const ansibleConfigSchema = z.string().default('').meta({ enum: ['', DEFAULT_ANSIBLE_CONFIG] });
/** Absent, the target is CFS's `dynamic` one, which is refused: an image session names its target. */
const requiredTargetSchema = sessionTargetSchema.default({ definition: 'dynamic', groups: [], image_map: [] }).meta({ default: undefined });
/** Tag names without '=' or ',' (OpenAPI 3.0 cannot state it: no propertyNames), values without ','; checked by session-rules.ts. */
const tagsSchema = z
  .record(z.string(), z.string().meta({ pattern: '^[^,]*$' }))
  .meta({ description: "Tags to find the session by (`tags=k=v` in listings): names non-empty, without '=' or ','; values without ','." });
/** The same object, snake_case inside, in v2 and v3 (CFS has no such field, so there is no v2 spelling to keep). */
const validationSchema = validationSpecSchema
  .optional()
  .meta({
    description:
      "Extension: prove each result before it is registered: `checks` run with /bin/sh in each customized root after the last layer (a non-zero exit fails the image), and `boot` boots each packed result in a virtual machine until a console line matches `success_pattern`. Absent: neither (CFS clients never send it).",
  });

/** Spelled the same in v2 and v3 (CFS has no such field). */
const layerCacheSchema = z
  .boolean('must be true or false')
  .optional()
  .meta({
    description:
      "Extension: false forces a full run: no layer is reused from the layer cache (each layer's change set is still recorded). Absent or true: the session's first layers that match recorded entries younger than the setting layer_cache_max_age_seconds are reused (when the setting layer_cache is on).",
  });

/** `POST /apis/cfs/v3/sessions` (V3SessionCreate). */
export const v3SessionCreateSchema = z.strictObject({
  name: sessionNameSchema,
  configuration_name: configurationNameSchema,
  configuration_limit: z.string().default(''),
  ansible_limit: ansibleLimitSchema.default(''),
  ansible_config: ansibleConfigSchema,
  ansible_verbosity: verbositySchema.default(0),
  ansible_passthrough: z.string().default(''),
  target: requiredTargetSchema,
  tags: tagsSchema.default({}),
  debug_on_failure: z.boolean().default(false),
  validation: validationSchema,
  layer_cache: layerCacheSchema,
}).meta({ required: ['name', 'configuration_name', 'target'] });

/** `POST /apis/cfs/v2/sessions` (V2SessionCreate): camelCase, no `debug_on_failure`. */
export const v2SessionCreateSchema = z.strictObject({
  name: sessionNameSchema,
  configurationName: configurationNameSchema,
  configurationLimit: z.string().default(''),
  ansibleLimit: ansibleLimitSchema.default(''),
  ansibleConfig: ansibleConfigSchema,
  ansibleVerbosity: verbositySchema.default(0),
  ansiblePassthrough: z.string().default(''),
  target: requiredTargetSchema,
  tags: tagsSchema.default({}),
  validation: validationSchema,
  layer_cache: layerCacheSchema,
}).meta({ required: ['name', 'configurationName', 'target'] });

/** A parsed v3 create request, defaults applied: what the create use case takes. */
export type SessionCreateRequest = z.output<typeof v3SessionCreateSchema>;
/** What a client may send to v3 (defaults not yet applied). */
export type V3SessionCreateInput = z.input<typeof v3SessionCreateSchema>;
export type V2SessionCreateRequest = z.output<typeof v2SessionCreateSchema>;
export type V2SessionCreateInput = z.input<typeof v2SessionCreateSchema>;
