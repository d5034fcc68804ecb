import { Command, Option } from 'commander';
import { ApiClient } from '../api-client.ts';
import { processIo, readJsonFile, type CliIo } from '../io.ts';
import { OUTPUT_FORMATS, outputOptions, printResult, table } from '../output.ts';
import { validationLine } from '../summaries.ts';

// The API's JSON is read loosely here: only display depends on it.
type Loose = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const BASE = '/apis/cfs/v3/automations';
const short = (value: unknown) => (typeof value === 'string' ? value.slice(0, 12) : '-');

/** Automations are a v3 addition: only `--format` applies. */
function withFormat(command: Command): Command {
  return command.addOption(new Option('--format <format>', 'output format: human, json (the API JSON, for jq) or yaml').choices(OUTPUT_FORMATS).default('human'));
}

function historyLine(h: Loose): string {
  const repeated = h.repeated ? ` (x${h.repeated}, last ${h.last_time})` : '';
  const session = h.session ? ` ${h.session}` : '';
  return `    ${h.time}  ${h.trigger.padEnd(16)} ${h.outcome.padEnd(7)}${session}: ${h.reason}${repeated}`;
}

/** What every session of the automation must pass before its result is registered, in one line. */
/** `cfs automations describe` / `update`: the automation, its last build and its recent runs and skips. */
export function automationSummary(value: unknown): string {
  const a = value as Loose;
  const triggers = [a.on_image_registered ? 'on image registered' : undefined, a.schedule ? `schedule ${a.schedule.expression} ${a.schedule.timezone}` : undefined].filter(Boolean);
  const lines = [
    `Automation ${a.name}`,
    `  configuration  ${a.configuration_name}${a.configuration_limit ? ` (limit: ${a.configuration_limit})` : ''}`,
    `  source         ${a.source?.name_pattern}${a.source?.arch ? ` (${a.source.arch})` : ''}, newest match`,
    `  groups         ${(a.groups ?? []).join(', ')}`,
    `  result name    ${a.result_name_template}`,
    `  triggers       ${triggers.length ? triggers.join('; ') : 'none (run by hand)'}`,
    `  rebuild        ${a.only_if_changed ? 'only when an input changed' : 'on every trigger'}`,
  ];
  if (a.validation) lines.push(`  validation     ${validationLine(a.validation)}`);
  if (a.next_run) lines.push(`  next run       ${a.next_run}`);
  if (a.last_build) {
    const b = a.last_build;
    lines.push(`  last build     ${b.time}: session ${b.session} from '${b.source?.name}', fingerprint ${short(b.fingerprint)}`);
    for (const layer of b.layers ?? []) lines.push(`    ${layer.name}  ${layer.clone_url} @ ${short(layer.commit)}${layer.branch ? ` (${layer.branch})` : ''}  ${layer.playbook}`);
  }
  const history: Loose[] = a.history ?? [];
  lines.push(history.length ? '  history (newest first)' : '  history        none yet');
  for (const h of history) lines.push(historyLine(h));
  return lines.join('\n');
}

/** `cfs automations list`. */
export function automationListSummary(value: unknown): string {
  const automations: Loose[] = (value as Loose).automations ?? [];
  if (automations.length === 0) return 'No automations.';
  return table(
    ['NAME', 'CONFIGURATION', 'SOURCE', 'TRIGGERS', 'LAST'],
    automations.map((a) => [
      a.name,
      a.configuration_name,
      a.source?.name_pattern ?? '-',
      [a.on_image_registered ? 'image' : '', a.schedule?.expression ?? ''].filter(Boolean).join(', ') || '-',
      a.history?.[0] ? `${a.history[0].outcome} ${a.history[0].time}` : '-',
    ]),
  );
}

/** `cfs automations plan`: what would be built, the fingerprint, and why. */
export function automationPlanSummary(value: unknown): string {
  const p = value as Loose;
  const verdict = p.action === 'build' ? 'would build' : p.action === 'skip' ? 'would skip' : 'cannot run';
  const lines = [`Automation ${p.automation}: ${verdict}`];
  if (p.source) lines.push(`  source         '${p.source.name}' (${p.source.id}), rootfs sha256 ${short(p.source.rootfs_sha256)}`);
  lines.push(`  configuration  ${p.configuration}${p.configuration_moved ? ' (its branches moved: a build stores the new commits first)' : ''}`);
  for (const layer of p.layers ?? []) {
    const moved = layer.pinned_commit ? `, configuration pins ${short(layer.pinned_commit)}` : '';
    lines.push(`    ${layer.name}  ${layer.clone_url} @ ${short(layer.commit)}${layer.branch ? ` (${layer.branch}${moved})` : ''}  ${layer.playbook}`);
  }
  if (p.result_name) lines.push(`  result         ${p.result_name}`);
  if (p.session_name) lines.push(`  session        ${p.session_name}`);
  if (p.fingerprint) lines.push(`  fingerprint    ${p.fingerprint}`);
  lines.push('  why');
  for (const reason of p.reasons ?? []) lines.push(`    - ${reason}`);
  if (p.git_calls !== undefined) lines.push(`  git calls      ${p.git_calls}`);
  return lines.join('\n');
}

/** `cfs automations run`: what the evaluation did. */
export function automationRunSummary(value: unknown): string {
  const r = value as Loose;
  const lines = [`Automation ${r.automation}: ${r.outcome}${r.session ? ` (session ${r.session})` : ''}`, `  why            ${r.reason}`];
  if (r.plan?.fingerprint) lines.push(`  fingerprint    ${r.plan.fingerprint}`);
  return lines.join('\n');
}

/**
 * `cfs automations update|describe|list|delete|plan|run`: sessions started on new images and
 * on schedules, rebuilding only when an input changed. `run` evaluates now, exactly as a
 * schedule tick would; `plan` says what a run would do and why, without running anything.
 */
export function automationsCommand(io: CliIo = processIo): Command {
  const automations = new Command('automations').description('automated sessions: on new images and on schedules, rebuilding only when an input changed');
  const api = () => new ApiClient(io);
  const path = (name: string) => `${BASE}/${encodeURIComponent(name)}`;

  withFormat(
    automations
      .command('update')
      .description('create or replace an automation from a JSON file')
      .argument('<name>', 'automation name (lowercase letters, digits and -)')
      .requiredOption('--file <file>', 'the automation JSON'),
  ).action(async (name: string, options: { file: string }, command: Command) => {
    const { body } = await api().request('PUT', path(name), { body: await readJsonFile(options.file) });
    await printResult(io, outputOptions(command).format, body, automationSummary);
  });

  withFormat(automations.command('describe').description('show an automation with its recent runs and skips').argument('<name>', 'automation name')).action(
    async (name: string, _options, command: Command) => {
      const { body } = await api().request('GET', path(name));
      await printResult(io, outputOptions(command).format, body, automationSummary);
    },
  );

  withFormat(automations.command('list').description('list automations')).action(async (_options, command: Command) => {
    const { body } = await api().request('GET', BASE);
    await printResult(io, outputOptions(command).format, body, automationListSummary);
  });

  withFormat(automations.command('delete').description('delete an automation (the sessions and images it made stay)').argument('<name>', 'automation name')).action(
    async (name: string, _options, command: Command) => {
      await api().request('DELETE', path(name));
      if (outputOptions(command).format === 'human') io.out(`Deleted automation ${name}.`);
    },
  );

  withFormat(automations.command('plan').description('what a run would build now, its fingerprint and why; runs nothing').argument('<name>', 'automation name')).action(
    async (name: string, _options, command: Command) => {
      const { body } = await api().request('GET', `${path(name)}/plan`);
      await printResult(io, outputOptions(command).format, body, automationPlanSummary);
    },
  );

  withFormat(automations.command('run').description('evaluate now, exactly as a schedule tick would').argument('<name>', 'automation name')).action(
    async (name: string, _options, command: Command) => {
      const { body } = await api().request('POST', `${path(name)}/run`);
      await printResult(io, outputOptions(command).format, body, automationRunSummary);
    },
  );

  return automations;
}
