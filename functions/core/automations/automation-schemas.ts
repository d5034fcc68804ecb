import { z } from 'zod';
import { IMAGE_ARCHES } from '../images/schemas.ts';
import { targetGroupSchema, v3SessionCreateSchema } from '../sessions/session-schemas.ts';
import { DEFAULT_RESULT_NAME_TEMPLATE } from './result-name.ts';

/**
 * The body of `PUT /apis/cfs/v3/automations/{name}`, closed at every level (a typo'd field is a
 * 400, never silently dropped). The ansible options and `validation` are the session's own,
 * with its defaults.
 */

/** A DNS label: automation names go into session names and tags. */
export const AUTOMATION_NAME_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** The `{name}` of `/v3/automations/{name}`, as checkAutomationName applies it and the OpenAPI document states it. */
export const automationNameSchema = z.string().min(1).max(63).regex(AUTOMATION_NAME_PATTERN);

const session = v3SessionCreateSchema.shape;

export const automationSpecSchema = z.strictObject({
  configuration_name: session.configuration_name,
  source: z.strictObject({
    name_pattern: z.string().min(1, 'must not be empty'),
    arch: z.enum(IMAGE_ARCHES, { error: `must be one of ${IMAGE_ARCHES.join(', ')}` }).optional(),
    include_automation_results: z.boolean().default(false),
  }),
  groups: z.array(targetGroupSchema.shape.name).min(1, 'must list at least one group'),
  result_name_template: z.string().default(DEFAULT_RESULT_NAME_TEMPLATE),
  on_image_registered: z.boolean().default(false),
  schedule: z
    .strictObject({
      expression: z.string().min(1, 'must not be empty'),
      timezone: z.string().default('UTC'),
    })
    .optional(),
  only_if_changed: z.boolean().default(true),
  configuration_limit: session.configuration_limit,
  ansible_limit: session.ansible_limit,
  ansible_config: session.ansible_config,
  ansible_verbosity: session.ansible_verbosity,
  ansible_passthrough: session.ansible_passthrough,
  debug_on_failure: session.debug_on_failure,
  /** The same object as a session's: every session the automation starts carries it. */
  validation: session.validation,
  /** As a session's: false makes every session it starts a full run (no layer reused from the layer cache). */
  layer_cache: session.layer_cache,
});

/** What a client may send (defaults not yet applied). */
export type AutomationSpecInput = z.input<typeof automationSpecSchema>;
