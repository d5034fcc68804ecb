import validatorModule from 'openapi-response-validator';
import { readFileSync } from 'node:fs';
import type { Contract } from './openapi-facts.ts';

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

/** A contract file of this folder (`cfs-contract.json`), read once per test file. */
export function loadContract(file: string): Contract {
  return JSON.parse(readFileSync(new URL(file, import.meta.url), 'utf8')) as Contract;
}

/**
 * Validates a response body against the contract's schema for `method path` and `status`.
 * Returns the validator's errors, or undefined when the body is valid; throws when the contract
 * does not hold that response, saying how to add it from the upstream spec.
 */
export function contractResponseErrors(contract: Contract, service: 'cfs' | 'ims', method: string, path: string, status: number, body: unknown): unknown {
  const operation = contract.paths[path]?.[method.toLowerCase()];
  if (!operation?.responses[String(status)]) {
    const add = `npx tsx scripts/check-upstream-contract.ts --add ${service} '${method.toLowerCase()} ${path} ${status}'`;
    throw new Error(`test/contract/${service}-contract.json has no ${status} response for ${method.toUpperCase()} ${path}: add it with ${add}`);
  }
  const validator = new OpenAPIResponseValidator({ responses: operation.responses, components: contract.components, customFormats: CUSTOM_FORMATS });
  return validator.validateResponse(status, body);
}
