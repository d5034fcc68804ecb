import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fstatSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LOCAL_ENV } from './environment.ts';

/** The file in the data directory that holds the server's API token (mode 0600: only the server's user reads it). */
export const API_TOKEN_FILE = 'api-token';

/** `cfs server`'s data directory when neither `--data-dir` nor CFS_DATA_DIR names one (relative to the working directory). */
export const DEFAULT_DATA_DIR = './.cfs';

/** The data directory named by `--data-dir`, else CFS_DATA_DIR, else the default; absolute. */
export function dataDirFrom(option: string | undefined, env: Record<string, string | undefined>): string {
  return resolve(option || env[LOCAL_ENV.DATA_DIR] || DEFAULT_DATA_DIR);
}

/**
 * The server's API token, made at first start: `token` when given (CFS_API_TOKEN), else the one
 * kept in `<dataDir>/api-token`, else a new random one. The file is written with mode 0600 (and
 * tightened to it if found looser), so other local users cannot read it; the CLI of the server's
 * own user reads it from there.
 */
export function loadOrCreateApiToken(dataDir: string, token?: string): string {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, API_TOKEN_FILE);
  if (token === undefined) {
    try {
      const kept = readFileSync(file, 'utf8').trim();
      if (kept.length > 0) {
        chmodSync(file, 0o600);
        return kept;
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  const value = token ?? randomBytes(32).toString('base64url');
  // Opened with mode 0600 from the start, so the token is never readable by others, not even briefly.
  const fd = openSync(file, 'w', 0o600);
  try {
    if ((fstatSync(fd).mode & 0o077) !== 0) chmodSync(file, 0o600);
    writeSync(fd, `${value}\n`);
  } finally {
    closeSync(fd);
  }
  return value;
}

/** What the CLI found where it looked for the token: the token, or why there is none (for the 401's hint). */
export type TokenLookup = { token: string; source: string } | { token: undefined; why: string };

/**
 * The token the CLI sends: `CFS_API_TOKEN`, else the token file of the data directory it is
 * pointed at (`--data-dir`, CFS_DATA_DIR), else of the default data directory.
 */
export function findApiToken(env: Record<string, string | undefined>, tokenEnv: string, dataDirOption?: string): TokenLookup {
  const given = env[tokenEnv];
  if (given) return { token: given, source: tokenEnv };
  const file = join(dataDirFrom(dataDirOption, env), API_TOKEN_FILE);
  try {
    const token = readFileSync(file, 'utf8').trim();
    if (token) return { token, source: file };
    return { token: undefined, why: `${file} is empty` };
  } catch (error) {
    return { token: undefined, why: `${tokenEnv} is not set and ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` };
  }
}
