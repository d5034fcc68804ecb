import { Command, Option } from 'commander';
import { ApiClient } from '../api-client.ts';
import { processIo, type CliIo } from '../io.ts';
import { OUTPUT_FORMATS, outputOptions, printResult } from '../output.ts';
import { createBody, withSessionOptions } from './session-options.ts';

// The API's JSON is read loosely here: only display depends on it.
type Loose = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const short = (value: unknown) => (typeof value === 'string' ? value.slice(0, 12) : '-');

/** `cfs sessions plan`: per source image what would be built, its fingerprint and why. */
export function sessionPlanSummary(value: unknown): string {
  const p = value as Loose;
  const lines = [`Session ${p.session} (plan; nothing was created)`, `  configuration  ${p.configuration}`];
  for (const layer of p.layers ?? []) {
    const head = layer.branch_head ? `, branch now at ${short(layer.branch_head)}` : '';
    lines.push(`    ${layer.name}  ${layer.clone_url} @ ${short(layer.commit)}${layer.branch ? ` (${layer.branch}${head})` : ''}  ${layer.playbook}`);
  }
  for (const image of p.images ?? []) {
    lines.push(`  image ${image.image_id}${image.source_name ? ` '${image.source_name}'` : ''} in ${(image.groups ?? []).join(', ')}`);
    if (image.result_name) lines.push(`    result       ${image.result_name}`);
    if (image.fingerprint) lines.push(`    fingerprint  ${image.fingerprint}`);
    for (const reason of image.reasons ?? []) lines.push(`    - ${reason}`);
  }
  for (const note of p.notes ?? []) lines.push(`  note: ${note}`);
  return lines.join('\n');
}

/**
 * `cfs sessions plan`: the same options as `cfs sessions create`, sent to
 * `POST /apis/cfs/v3/sessions/plan`, which checks them as a create would and says what the
 * session would build and why, without creating it.
 */
export function sessionPlanCommand(io: CliIo = processIo): Command {
  return withSessionOptions(new Command('plan').description('what a session with these options would build, its fingerprints and why; creates nothing'))
    .addOption(new Option('--format <format>', 'output format: human, json (the API JSON, for jq) or yaml').choices(OUTPUT_FORMATS).default('human'))
    .action(async (_options, command: Command) => {
      const { body } = await new ApiClient(io).request('POST', '/apis/cfs/v3/sessions/plan', { body: createBody(command) });
      await printResult(io, outputOptions(command).format, body, sessionPlanSummary);
    });
}
