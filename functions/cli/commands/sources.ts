import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { z } from 'zod';
import { ApiClient } from '../api-client.ts';
import { CliError, processIo, type CliIo } from '../io.ts';
import { booleanFlag, parseOptions } from '../option-schemas.ts';
import { outputOptions, printResult, table, withOutputOptions } from '../output.ts';
import { listPages, printPagingHint } from './list-pages.ts';

const SOURCES = '/apis/cfs/v3/sources';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = any;

/** One source as `describe` shows it: never a login (the API answers none), only the secret's name. */
function sourceSummary(value: unknown): string {
  const s = value as Loose;
  const lines = [`Source ${s.name} (last updated ${s.last_updated})`, `  clone url    ${s.clone_url}`, `  secret       ${s.credentials?.secret_name}`];
  if (s.description) lines.push(`  description  ${s.description}`);
  if (s.ca_cert) lines.push(`  CA bundle    ${s.ca_cert.configmap_name}`);
  return lines.join('\n');
}

function sourceListSummary(value: unknown): string {
  const sources: Loose[] = (value as Loose).sources ?? [];
  if (sources.length === 0) return 'No sources.';
  return table(['NAME', 'CLONE URL', 'LAST UPDATED'], sources.map((s) => [s.name, s.clone_url, s.last_updated]));
}

/**
 * The password, never from an argument (it would show in `ps` and shell history): the first
 * line of `--password-file FILE`, or of stdin with `--password-stdin`. Nothing is echoed.
 */
async function readPassword(options: { passwordFile?: string; passwordStdin?: boolean }, stdin: () => Promise<string>): Promise<string | undefined> {
  if (options.passwordFile && options.passwordStdin) throw new CliError('give either --password-file or --password-stdin, not both');
  let text: string | undefined;
  if (options.passwordFile) {
    try {
      text = await readFile(options.passwordFile, 'utf8');
    } catch (error) {
      throw new CliError(`cannot read ${options.passwordFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  } else if (options.passwordStdin) {
    text = await stdin();
  }
  if (text === undefined) return undefined;
  const password = text.split(/\r?\n/)[0] ?? '';
  if (password === '') throw new CliError('the password is empty');
  return password;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

async function readCaFile(path: string | undefined): Promise<string | undefined> {
  if (path === undefined) return undefined;
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

const createOptions = z.object({
  name: z.string().optional(),
  cloneUrl: z.string({ error: '--clone-url is required' }),
  description: z.string().optional(),
  username: z.string({ error: '--username is required' }),
  passwordFile: z.string().optional(),
  passwordStdin: z.boolean().optional(),
  caCertFile: z.string().optional(),
});

const updateOptions = z.object({
  cloneUrl: z.string().optional(),
  description: z.string().optional(),
  username: z.string().optional(),
  passwordFile: z.string().optional(),
  passwordStdin: z.boolean().optional(),
  caCertFile: z.string().optional(),
  removeCaCert: z.boolean().optional(),
});

const listOptions = z.object({ limit: z.string().optional(), afterId: z.string().optional(), inUse: booleanFlag('--in-use').optional(), all: z.boolean().optional() });

const path = (name: string) => `${SOURCES}/${encodeURIComponent(name)}`;

/**
 * `cfs sources create|list|describe|update|delete`, the counterpart of `cray cfs v3 sources`:
 * a clone URL whose login the server keeps in its secret store. The password is read from a
 * file or stdin, never from the command line, and no answer shows it.
 */
export function sourcesCommand(io: CliIo = processIo, stdin: () => Promise<string> = readStdin): Command {
  const sources = new Command('sources').description('sources: clone URLs whose git login the server keeps (CFS v3)');

  withOutputOptions(
    sources
      .command('create')
      .description('add a source; its login goes to the server\'s secret store')
      .option('--name <name>', 'the source name (default: the clone URL)')
      .option('--clone-url <url>', 'the repository, https://, without a login')
      .option('--description <text>', 'a description')
      .option('--username <name>', 'the git user name')
      .option('--password-file <file>', 'read the password from the first line of this file')
      .option('--password-stdin', 'read the password from the first line of stdin')
      .option('--ca-cert-file <file>', "a PEM CA bundle for the repository's TLS certificate"),
  ).action(async (options: unknown, command: Command) => {
    const { format } = outputOptions(command);
    const o = parseOptions(createOptions, options);
    const password = await readPassword(o, stdin);
    if (password === undefined) throw new CliError('give the password with --password-file FILE or --password-stdin');
    const pem = await readCaFile(o.caCertFile);
    const body = {
      ...(o.name !== undefined ? { name: o.name } : {}),
      ...(o.description !== undefined ? { description: o.description } : {}),
      clone_url: o.cloneUrl,
      credentials: { username: o.username, password },
      ...(pem !== undefined ? { ca_cert: { configmap_name: o.caCertFile!.split('/').pop()!, pem } } : {}),
    };
    const { body: answer } = await new ApiClient(io).request('POST', SOURCES, { body });
    await printResult(io, format, answer, sourceSummary);
  });

  withOutputOptions(sources.command('describe').description('show a source (never its login)').argument('<name>', 'source name')).action(
    async (name: string, _options, command: Command) => {
      const { format } = outputOptions(command);
      const { body } = await new ApiClient(io).request('GET', path(name));
      await printResult(io, format, body, sourceSummary);
    },
  );

  withOutputOptions(
    sources
      .command('list')
      .description('list sources (one page, or every page with --all)')
      .option('--limit <n>', 'at most this many (default: the default_page_size option)')
      .option('--after-id <name>', "the sources after this name (the previous page's next.after_id)")
      .option('--in-use <boolean>', 'true: only sources a configuration names; false: only the others')
      .option('--all', 'follow next to the last page'),
  ).action(async (options: object, command: Command) => {
    const { format } = outputOptions(command);
    const { limit, afterId, inUse, all } = parseOptions(listOptions, options);
    const query = Object.fromEntries(
      Object.entries({ limit, after_id: afterId, in_use: inUse === undefined ? undefined : String(inUse) }).filter((entry): entry is [string, string] => entry[1] !== undefined),
    );
    const { records, next } = await listPages(new ApiClient(io), SOURCES, 'sources', query, all === true);
    await printResult(io, format, { sources: records, next }, sourceListSummary);
    printPagingHint(io, format, 'sources', next);
  });

  withOutputOptions(
    sources
      .command('update')
      .description('change a source: clone URL, description, CA bundle or login (what is not given is kept)')
      .argument('<name>', 'source name')
      .option('--clone-url <url>', 'the repository, https://, without a login')
      .option('--description <text>', 'a description')
      .option('--username <name>', 'the git user name')
      .option('--password-file <file>', 'read the new password from the first line of this file')
      .option('--password-stdin', 'read the new password from the first line of stdin')
      .option('--ca-cert-file <file>', 'a PEM CA bundle for the repository')
      .option('--remove-ca-cert', 'forget the CA bundle'),
  ).action(async (name: string, options: unknown, command: Command) => {
    const { format } = outputOptions(command);
    const o = parseOptions(updateOptions, options);
    if (o.caCertFile && o.removeCaCert) throw new CliError('give either --ca-cert-file or --remove-ca-cert, not both');
    const password = await readPassword(o, stdin);
    const pem = await readCaFile(o.caCertFile);
    const credentials = { ...(o.username !== undefined ? { username: o.username } : {}), ...(password !== undefined ? { password } : {}) };
    const body = {
      ...(o.cloneUrl !== undefined ? { clone_url: o.cloneUrl } : {}),
      ...(o.description !== undefined ? { description: o.description } : {}),
      ...(Object.keys(credentials).length ? { credentials } : {}),
      ...(pem !== undefined ? { ca_cert: { configmap_name: o.caCertFile!.split('/').pop()!, pem } } : o.removeCaCert ? { ca_cert: null } : {}),
    };
    const { body: answer } = await new ApiClient(io).request('PATCH', path(name), { body });
    await printResult(io, format, answer, sourceSummary);
  });

  withOutputOptions(sources.command('delete').description('delete a source no configuration names, and its login').argument('<name>', 'source name')).action(
    async (name: string, _options, command: Command) => {
      const { format } = outputOptions(command);
      await new ApiClient(io).request('DELETE', path(name));
      if (format === 'human') io.out(`Deleted source ${name}.`);
    },
  );

  return sources;
}
