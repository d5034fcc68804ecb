import SwaggerParser from '@apidevtools/swagger-parser';
import validatorModule from 'openapi-response-validator';
import { fileURLToPath } from 'node:url';

/** The unmodified IMS spec, as the reference copy holds it. */
export const IMS_SPEC_PATH = fileURLToPath(new URL('../../../shared/reference/ims-openapi.yaml', import.meta.url));

type Operation = { responses: Record<string, unknown> };
type Api = { paths: Record<string, Record<string, Operation>>; components?: Record<string, unknown> };

let loaded: Promise<Api> | undefined;

// A CommonJS module whose class is `exports.default`; how it arrives depends on the loader's interop.
type ValidatorClass = new (args: unknown) => { validateResponse(status: number, body: unknown): unknown };
const OpenAPIResponseValidator = ((validatorModule as unknown as { default?: ValidatorClass }).default ??
  (validatorModule as unknown as ValidatorClass));

// The validator ignores formats it does not know; these make `format: uuid` and `date-time` count.
const CUSTOM_FORMATS = {
  uuid: (value: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value),
  'date-time': (value: string) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(value) && !Number.isNaN(Date.parse(value)),
};

/**
 * Validates a response body against the IMS spec's schema for `method specPath` and `status`
 * (paths as the spec writes them, e.g. `/v3/images/{image_id}`). Returns the validator's errors,
 * or undefined when the body is valid.
 */
export async function imsResponseErrors(method: string, specPath: string, status: number, body: unknown): Promise<unknown> {
  loaded ??= SwaggerParser.dereference(IMS_SPEC_PATH) as unknown as Promise<Api>;
  const api = await loaded;
  const operation = api.paths[specPath]?.[method.toLowerCase()];
  if (!operation) throw new Error(`the IMS spec has no ${method} ${specPath}`);
  const validator = new OpenAPIResponseValidator({ responses: operation.responses, components: api.components, customFormats: CUSTOM_FORMATS });
  return validator.validateResponse(status, body);
}
