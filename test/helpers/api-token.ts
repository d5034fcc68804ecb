import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { API_TOKEN_FILE } from '../../functions/server/api-token.ts';

/** A running server as the tests know it: where it answers and where its data (and token file) are. */
export interface ServerAddress {
  url: string;
  dataDir: string;
}

/** The API token of the server on `dataDir`, read from its token file as the CLI reads it. */
export function apiTokenOf(dataDir: string): string {
  return readFileSync(join(dataDir, API_TOKEN_FILE), 'utf8').trim();
}

/** The `Authorization` header a raw HTTP call to `server` needs. */
export function bearer(server: { dataDir: string }): { Authorization: string } {
  return { Authorization: `Bearer ${apiTokenOf(server.dataDir)}` };
}

/** The environment that points the CLI at `server`: its URL, and its data directory, where the CLI finds the token by itself. */
export function cliEnv(server: ServerAddress): { CFS_API_URL: string; CFS_DATA_DIR: string } {
  return { CFS_API_URL: server.url, CFS_DATA_DIR: server.dataDir };
}
