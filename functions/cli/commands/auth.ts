import { Command } from 'commander';
import { findApiToken } from '../../server/api-token.ts';
import { LOCAL_ENV } from '../../server/environment.ts';
import { CliError, processIo, type CliIo } from '../io.ts';

/**
 * `cfs auth token`: prints the API token the CLI would send (CFS_API_TOKEN, else the token file
 * of the data directory it is pointed at), for scripts and other HTTP clients:
 * `curl -H "Authorization: Bearer $(cfs auth token)" ...`. Only the server's own user can read
 * the file, so only they get it.
 */
export function authCommand(io: CliIo = processIo): Command {
  const auth = new Command('auth').description("the credential the CLI sends to `cfs server` (its own user's)");
  auth
    .command('token')
    .description(`print the API token: ${LOCAL_ENV.API_TOKEN}, else <data dir>/api-token (--data-dir, ${LOCAL_ENV.DATA_DIR}, else ./.cfs)`)
    .action(() => {
      const found = findApiToken(io.env, LOCAL_ENV.API_TOKEN);
      if (found.token === undefined) throw new CliError(`no API token: ${found.why}; run this as the server's user, with --data-dir naming its data directory`);
      io.out(found.token);
    });
  return auth;
}
