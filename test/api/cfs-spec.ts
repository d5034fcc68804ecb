import SwaggerParser from '@apidevtools/swagger-parser';
import validatorModule from 'openapi-response-validator';
import { fileURLToPath } from 'node:url';

/** The unmodified CFS spec, as the reference copy holds it (v2 and v3 in one file). */
export const CFS_SPEC_PATH = fileURLToPath(new URL('../../../shared/reference/cfs-openapi.yaml', import.meta.url));

type Operation = { responses: Record<string, unknown> };
type Api = { paths: Record<string, Record<string, Operation>>; components?: Record<string, unknown> };
type ValidatorClass = new (args: unknown) => { validateResponse(status: number, body: unknown): unknown };

// A CommonJS module whose class is `exports.default`; how it arrives depends on the loader's interop.
const OpenAPIResponseValidator =
  (validatorModule as unknown as { default?: ValidatorClass }).default ?? (validatorModule as unknown as ValidatorClass);

// The validator ignores formats it does not know; these make `date-time` and `uuid` count.
const CUSTOM_FORMATS = {
  uuid: (value: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value),
  'date-time': (value: string) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(value) && !Number.isNaN(Date.parse(value)),
  uri: () => true,
};

let loaded: Promise<Api> | undefined;

/**
 * Validates a response body against the CFS spec's schema for `method specPath` and `status`
 * (spec paths, e.g. `/v3/sessions/{session_name}`). Returns the validator's errors, or
 * undefined when the body is valid.
 */
export async function cfsResponseErrors(method: string, specPath: string, status: number, body: unknown): Promise<unknown> {
  loaded ??= SwaggerParser.dereference(CFS_SPEC_PATH) as unknown as Promise<Api>;
  const api = await loaded;
  const operation = api.paths[specPath]?.[method.toLowerCase()];
  if (!operation) throw new Error(`the CFS spec has no ${method} ${specPath}`);
  if (!(String(status) in operation.responses)) throw new Error(`the CFS spec has no ${status} response for ${method} ${specPath}`);
  const validator = new OpenAPIResponseValidator({ responses: operation.responses, components: api.components, customFormats: CUSTOM_FORMATS });
  return validator.validateResponse(status, body);
}
