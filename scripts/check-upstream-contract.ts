/**
 * `npm run test:upstream`: checks the project's API contract (test/contract/cfs-contract.json,
 * ims-contract.json) against the upstream CFS and IMS OpenAPI specs, when they are at hand.
 *
 * The API tests validate bodies against the contract alone, so the repository passes its tests
 * by itself; this check is what keeps the contract true to the upstream specs. The specs are read
 * from UPSTREAM_SPECS_DIR (default: ../shared/reference beside the project root); when that
 * folder is absent the check says so and succeeds.
 *
 *   npx tsx scripts/check-upstream-contract.ts                       check; exit 1 on any difference
 *   npx tsx scripts/check-upstream-contract.ts --add cfs 'get /v3/options 200' ...
 *                                                                     add responses a new test validates
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import {
  contractDifferences,
  contractOperations,
  projectContract,
  type Contract,
  type JsonObject,
  type OperationKey,
} from '../test/contract/openapi-facts.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SPECS_DIR = resolve(ROOT, process.env.UPSTREAM_SPECS_DIR ?? '../shared/reference');
const SERVICES = {
  cfs: { contract: join(ROOT, 'test/contract/cfs-contract.json'), spec: 'cfs-openapi.yaml' },
  ims: { contract: join(ROOT, 'test/contract/ims-contract.json'), spec: 'ims-openapi.yaml' },
} as const;
type Service = keyof typeof SERVICES;

const readContract = (service: Service): Contract =>
  existsSync(SERVICES[service].contract)
    ? (JSON.parse(readFileSync(SERVICES[service].contract, 'utf8')) as Contract)
    : { openapi: '3.0.2', paths: {}, components: { schemas: {} } };

const readSpec = (service: Service): JsonObject => parse(readFileSync(join(SPECS_DIR, SERVICES[service].spec), 'utf8')) as JsonObject;

/** JSON with every object or array that fits in 100 columns on one line, so a schema reads at a glance. */
function formatJson(value: unknown, indent = '', prefix = 0): string {
  const inline = JSON.stringify(value, null, 1).replace(/\n\s*/g, ' ').replace(/([[{]) /g, '$1').replace(/ ([\]}])/g, '$1');
  if (typeof value !== 'object' || value === null || indent.length + prefix + inline.length <= 100) return inline;
  const inner = indent + '  ';
  const lines = Array.isArray(value)
    ? value.map((item) => inner + formatJson(item, inner))
    : Object.entries(value).map(([key, item]) => `${inner}${JSON.stringify(key)}: ${formatJson(item, inner, JSON.stringify(key).length + 2)}`);
  return `${Array.isArray(value) ? '[' : '{'}\n${lines.join(',\n')}\n${indent}${Array.isArray(value) ? ']' : '}'}`;
}

function parseOperation(text: string): OperationKey {
  const [method, path, status, extra] = text.trim().split(/\s+/);
  if (!method || !path?.startsWith('/') || !status || extra !== undefined) throw new Error(`expected 'method /path status', got '${text}'`);
  return { method: method.toLowerCase(), path, status };
}

function check(): number {
  let operations = 0;
  let schemas = 0;
  let differences = 0;
  for (const service of Object.keys(SERVICES) as Service[]) {
    const result = contractDifferences(readContract(service), readSpec(service));
    for (const difference of result.differences) console.log(`${service}-contract.json ${difference.path}: ${difference.message}`);
    operations += result.operations;
    schemas += result.schemas;
    differences += result.differences.length;
  }
  console.log(`${operations} operations, ${schemas} schemas checked, ${differences} differences (upstream specs: ${SPECS_DIR})`);
  return differences;
}

function add(service: Service, texts: string[]): void {
  const keys = [...contractOperations(readContract(service)), ...texts.map(parseOperation)];
  writeFileSync(SERVICES[service].contract, formatJson(projectContract(readSpec(service), keys)) + '\n');
  console.log(`${SERVICES[service].contract}: ${keys.length} responses`);
}

function main(args: string[]): number {
  if (!existsSync(SPECS_DIR)) {
    console.log(`skipped: no upstream specs at ${SPECS_DIR}`);
    return 0;
  }
  if (args[0] === '--add') {
    const service = args[1];
    if (service !== 'cfs' && service !== 'ims') throw new Error(`--add takes cfs or ims, got ${service}`);
    // Adding re-projects the whole contract from upstream: only do it over a contract that agrees.
    if (check() > 0) return 1;
    add(service, args.slice(2));
    return 0;
  }
  if (args.length > 0) throw new Error(`unknown arguments: ${args.join(' ')}`);
  return check() > 0 ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
