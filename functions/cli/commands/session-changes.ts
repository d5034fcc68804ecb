import { Option, type Command } from 'commander';
import { z } from 'zod';
import type { LayerChanges } from '../../core/layer-cache/entry.ts';
import { ApiClient, ApiError, cfsBase } from '../api-client.ts';
import { CliError, processIo, type CliIo } from '../io.ts';
import { matchingFlag, parseOptions } from '../option-schemas.ts';
import { OUTPUT_FORMATS, outputOptions, printResult } from '../output.ts';

/** `changes`' flags: the layer is an index (as in the log names), the image one of the session's. */
const changesOptions = z.object({
  layer: matchingFlag(/^\d+$/, '--layer takes a layer index (0, 1, ...)').optional(),
  image: z.string().min(1).optional(),
});

/** The parts of a v3 session `changes` reads. */
interface SessionShape {
  target?: { groups?: Array<{ members?: string[] }> };
  status?: { layers?: Array<{ name: string }> };
}

/** One layer of one image: its report, or why there is none (the API's 404 detail). */
interface LayerReport {
  layer: number;
  name: string;
  image_id: string;
  changes?: LayerChanges;
  missing?: string;
}

const CHANGE_MARKS = { added: 'A', modified: 'M', removed: 'D' } as const;

/** A layer's report in words: the package changes, then the file changes, each with counts. */
export function layerChangesText(report: LayerReport): string {
  const head = `layer ${report.layer} ${report.name} (image ${report.image_id})`;
  if (!report.changes) return `${head}: no changes recorded: ${report.missing ?? 'unknown'}`;
  const { packages, files, files_truncated: truncated } = report.changes;
  const lines = [`${head}`];
  if (!packages) lines.push('  packages: no package database (dpkg or rpm) in the root');
  else {
    lines.push(`  packages (${packages.manager}): ${packages.changes.length} changed`);
    for (const p of packages.changes) {
      const what = p.old === null ? `installed ${p.new}` : p.new === null ? `removed (was ${p.old})` : `${p.old} -> ${p.new}`;
      lines.push(`    ${p.old === null ? '+' : p.new === null ? '-' : '~'} ${p.name}  ${what}`);
    }
  }
  const count = (change: keyof typeof CHANGE_MARKS) => files.filter((f) => f.change === change).length;
  lines.push(`  files: ${files.length}${truncated ? '+ (the list stops at 100,000)' : ''} changed: ${count('added')} added, ${count('modified')} modified, ${count('removed')} removed`);
  for (const f of files) lines.push(`    ${CHANGE_MARKS[f.change]} ${f.path}${f.type === 'file' ? '' : `  (${f.type})`}`);
  return lines.join('\n');
}

/**
 * The reports of a session's layers (every layer, or `--layer N`) on its images (every image, or
 * `--image ID`), one request per layer and image; a layer with none carries the API's reason.
 */
export async function sessionLayerReports(io: CliIo, name: string, options: { layer?: string; image?: string }): Promise<LayerReport[]> {
  const api = new ApiClient(io);
  const base = `${cfsBase('3')}/sessions/${encodeURIComponent(name)}`;
  const { body: session } = await api.request<SessionShape>('GET', base);
  const layers = session?.status?.layers ?? [];
  const images = [...new Set((session?.target?.groups ?? []).flatMap((g) => g.members ?? []))];
  if (options.image !== undefined && !images.includes(options.image)) throw new CliError(`image ${options.image} is not one of session ${name}'s images (${images.join(', ')})`);
  const indices = options.layer !== undefined ? [Number(options.layer)] : layers.map((_, i) => i);
  if (options.layer !== undefined && indices[0]! >= layers.length) throw new CliError(`session ${name} has no layer ${options.layer}: its layers are 0 to ${layers.length - 1}`);
  const reports: LayerReport[] = [];
  for (const image of options.image !== undefined ? [options.image] : images) {
    for (const index of indices) {
      const entry = { layer: index, name: layers[index]?.name ?? String(index), image_id: image };
      try {
        const { body } = await api.request<LayerChanges>('GET', `${base}/layers/${index}/changes`, { query: { image_id: image } });
        reports.push({ ...entry, changes: body! });
      } catch (error) {
        if (!(error instanceof ApiError) || error.status !== 404) throw error;
        reports.push({ ...entry, missing: error.detail ?? error.message });
      }
    }
  }
  return reports;
}

/** `cfs sessions changes NAME [--layer N] [--image ID]`. */
export function addChangesCommand(sessions: Command, io: CliIo = processIo): void {
  sessions
    .command('changes')
    .description("what each layer changed in each image: packages (dpkg or rpm) then files; json and yaml print the layer cache's reports")
    .argument('<name>', 'session name')
    .option('--layer <index>', 'only this layer (0-based, as in the log names)')
    .option('--image <id>', "only this image (one of the session's source images)")
    .addOption(new Option('--format <format>', 'output format: human, json (the reports, for jq) or yaml').choices(OUTPUT_FORMATS).default('human'))
    .action(async (name: string, flags: unknown, command: Command) => {
      const { format } = outputOptions(command);
      const options = parseOptions(changesOptions, flags);
      const reports = await sessionLayerReports(io, name, options);
      if (format === 'human') return void io.out(reports.map(layerChangesText).join('\n'));
      // The reports themselves; a layer without one is said on stderr, so the output stays the API's objects.
      for (const r of reports) if (!r.changes) io.err(`layer ${r.layer} ${r.name} (image ${r.image_id}): no changes recorded: ${r.missing}`);
      const found = reports.flatMap((r) => (r.changes ? [r.changes] : []));
      await printResult(io, format, options.layer !== undefined && found.length === 1 ? found[0] : found, () => '');
    });
}
