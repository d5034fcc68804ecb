import type { Command } from 'commander';
import { z } from 'zod';
import { ApiClient, cfsBase } from '../api-client.ts';
import { processIo, type CliIo } from '../io.ts';
import { matchingFlag, parseOptions } from '../option-schemas.ts';

interface LogChunk {
  text: string;
  cursor: string;
  complete: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `logs`' flags: the layer is an index, the test a test log's name; both are sent to the API as given (it says which exist). */
const logsOptions = z
  .object({
    follow: z.boolean().optional(),
    layer: matchingFlag(/^\d+$/, '--layer takes a layer index (0, 1, ...)').optional(),
    test: matchingFlag(/^[^/\s]+\/(check-[^/\s]+|boot-console)$/, '--test takes IMAGE_ID/check-NAME or IMAGE_ID/boot-console').optional(),
  })
  .refine((o) => o.layer === undefined || o.test === undefined, { message: '--layer and --test: give one of them, not both', path: ['test'] });

/**
 * Prints a session's logs (every layer in order, then each image's test logs: its checks' output
 * and its boot test's console; or `--layer N`, or `--test IMAGE_ID/check-NAME`); with `--follow`
 * keeps polling with the cursor the API returned until the session (or the one log) has ended.
 * Each poll is a short request, so it works through any proxy or API Gateway.
 */
export async function printSessionLogs(io: CliIo, name: string, options: { follow: boolean; layer?: string; test?: string; pollMs?: number }): Promise<void> {
  const api = new ApiClient(io);
  let cursor: string | undefined;
  for (;;) {
    const { body } = await api.request<LogChunk>('GET', `${cfsBase('3')}/sessions/${encodeURIComponent(name)}/logs`, {
      query: { cursor, layer: options.layer, test: options.test, max_bytes: String(256 * 1024) },
    });
    const chunk = body!;
    // The API hands out whole lines while a layer runs; the line writer adds the last newline back.
    if (chunk.text) io.out(chunk.text.endsWith('\n') ? chunk.text.slice(0, -1) : chunk.text);
    cursor = chunk.cursor;
    if (!options.follow || chunk.complete) return;
    // A full chunk means more is waiting: ask again at once.
    if (Buffer.byteLength(chunk.text) < 256 * 1024) await sleep(options.pollMs ?? 1000);
  }
}

/** `cfs sessions logs NAME [--follow] [--layer N | --test IMAGE_ID/check-NAME]`. */
export function addLogsCommand(sessions: Command, io: CliIo = processIo): void {
  sessions
    .command('logs')
    .description("print a session's logs (every Ansible layer in order, then each image's checks and boot console); --follow keeps printing until the session ends")
    .argument('<name>', 'session name')
    .option('-f, --follow', 'keep polling for new output until the session (or the one log) has ended')
    .option('--layer <index>', 'only this layer (0-based, in the order the session runs them)')
    .option('--test <log>', "only this test log: IMAGE_ID/check-NAME (a check's output) or IMAGE_ID/boot-console (the boot test's serial console)")
    .action(async (name: string, flags: unknown) => {
      const options = parseOptions(logsOptions, flags);
      await printSessionLogs(io, name, { follow: Boolean(options.follow), layer: options.layer, test: options.test });
    });
}
