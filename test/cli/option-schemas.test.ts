import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { configurationsCommand } from '../../functions/cli/commands/configurations.ts';
import { imagesCommand } from '../../functions/cli/commands/images.ts';
import { optionsCommand } from '../../functions/cli/commands/options.ts';
import { sessionsCommand } from '../../functions/cli/commands/sessions.ts';
import { settingsCommand } from '../../functions/cli/commands/settings.ts';
import type { CliIo } from '../../functions/cli/io.ts';
import { booleanFlag, parseOptions } from '../../functions/cli/option-schemas.ts';

/** An io whose API address nothing listens on: every case here is refused before a request. */
const io: CliIo = { out: () => undefined, err: () => undefined, env: { CFS_API_URL: 'http://127.0.0.1:9', CFS_API_TOKEN: 'unused' } };

/** The error a command's parseAsync rejects with, as the CLI's error handler receives it. */
async function refusal(command: Command, ...argv: string[]): Promise<{ name: string; message: string }> {
  const error = await command
    .exitOverride()
    .parseAsync(argv, { from: 'user' })
    .then(() => undefined, (e: unknown) => e as Error);
  return { name: error?.name ?? 'none', message: error?.message ?? 'no error' };
}

describe('CLI options parsed by zod schemas', () => {
  it('reads a [boolean] flag bare or as true/false in any case, and names the flag and the text it refuses', () => {
    // Arrange
    const schema = booleanFlag('--debug-on-failure');
    // Act
    const values = [true, 'True', ' false '].map((value) => parseOptions(schema, value));
    const refused = () => parseOptions(schema, 'maybe');
    // Assert
    expect(values).toEqual([true, true, false]);
    expect(refused).toThrow(expect.objectContaining({ name: 'CliError', message: "--debug-on-failure takes true or false, not 'maybe'" }));
  });

  it.each([
    ['configurations update --drop-branches', () => configurationsCommand(io), ['update', 'c', '--file', 'c.json', '--drop-branches', 'nah'], "--drop-branches takes true or false, not 'nah'"],
    ['configurations list paging on v2', () => configurationsCommand(io), ['list', '--api-version', '2', '--limit', '3'], '--limit and --after-id are v3 paging; v2 has none'],
    ['settings update --squashfs-compression-level', () => settingsCommand(io), ['update', '--squashfs-compression-level', 'lots'], "--squashfs-compression-level takes an integer, not 'lots'"],
    ['options update --batcher-disable', () => optionsCommand(io), ['update', '--batcher-disable', 'maybe'], "--batcher-disable takes true or false, not 'maybe'"],
    ['images import --compression-level', () => imagesCommand(io), ['import', '--name', 'n', '--rootfs', 'root', '--compression-level', '9x'], "--compression-level takes a number, not '9x'"],
    ['sessions list --after-id on v2', () => sessionsCommand(io), ['list', '--api-version', '2', '--after-id', 's1'], '--after-id is v3 paging; v2 has none (drop --api-version 2)'],
    ['sessions deleteall --age on v3', () => sessionsCommand(io), ['deleteall', '--age', '1h'], '--age is v2 only; use --min-age'],
    ['sessions logs --layer', () => sessionsCommand(io), ['logs', 's1', '--layer', 'one'], "--layer takes a layer index (0, 1, ...), not 'one'"],
    ['sessions wait --timeout', () => sessionsCommand(io), ['wait', 's1', '--timeout', '0'], "--timeout takes a whole number of seconds, not '0'"],
  ])('refuses %s with one line naming the flag and the value', async (_title, command, argv, message) => {
    // Act
    const error = await refusal(command(), ...argv);
    // Assert
    expect(error).toEqual({ name: 'CliError', message });
  });
});
