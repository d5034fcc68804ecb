import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { OPENAPI_PATH } from '../../functions/api/openapi.ts';
import type { EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { bearer } from './api-token.ts';

const run = promisify(execFile);

/** `nobody`: another local user, with no groups of root's. */
const AS_NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

/** One route of the OpenAPI document, its parameters filled in, and what `nobody` got back. */
export interface Attempt {
  method: string;
  path: string;
  status: number;
}

/** Every operation of the server's own OpenAPI document, as `METHOD /path` with each `{param}` filled. */
export async function documentedOperations(runtime: EmbeddedRuntime): Promise<{ method: string; path: string }[]> {
  const document = (await (await fetch(`${runtime.url}${OPENAPI_PATH}`, { headers: bearer(runtime) })).json()) as { paths: Record<string, Record<string, unknown>> };
  const operations: { method: string; path: string }[] = [];
  for (const [path, methods] of Object.entries(document.paths)) {
    for (const method of Object.keys(methods)) operations.push({ method: method.toUpperCase(), path: path.replace(/\{[^}]+\}/g, (p) => (p === '{key}' ? 'boot-images/x/rootfs' : 'attack')) });
  }
  return operations;
}

/**
 * Sends every documented operation as `nobody` with curl (a JSON body that would create a
 * session or configuration on the write routes), from a script only `nobody` runs.
 */
export async function curlAsNobody(runtime: EmbeddedRuntime, scratch: string): Promise<Attempt[]> {
  const operations = await documentedOperations(runtime);
  const body = JSON.stringify({ name: 'attack', configuration_name: 'attack', layers: [], target: { definition: 'image', groups: [] } });
  const lines = operations.map(({ method, path }) => {
    const data = method === 'GET' || method === 'HEAD' || method === 'DELETE' ? '' : ` -H 'Content-Type: application/json' --data-raw '${body}'`;
    return `printf '%s %s ' ${method} '${path}'; curl -s -o /dev/null -w '%{http_code}\\n' -X ${method}${data} '${runtime.url}${path}'`;
  });
  mkdirSync(scratch, { recursive: true });
  const script = join(scratch, 'as-nobody.sh');
  writeFileSync(script, `#!/bin/sh\n${lines.join('\n')}\n`);
  chmodSync(scratch, 0o755);
  chmodSync(script, 0o755);
  const { stdout } = await run(AS_NOBODY[0]!, [...AS_NOBODY.slice(1), script], { maxBuffer: 1 << 20 });
  return stdout.trim().split('\n').map((line) => {
    const [method, path, status] = line.split(' ');
    return { method: method!, path: path!, status: Number(status) };
  });
}

/** Runs the real `cfs` bin as `nobody`, pointed at the server and its data directory; code and stderr. */
export async function cfsAsNobody(runtime: EmbeddedRuntime, bin: string, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await run(AS_NOBODY[0]!, [...AS_NOBODY.slice(1), process.execPath, bin, ...argv], {
      env: { PATH: process.env.PATH, HOME: '/nonexistent', CFS_API_URL: runtime.url, CFS_DATA_DIR: runtime.dataDir },
    });
    return { code: 0, out: stdout, err: stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, out: e.stdout ?? '', err: e.stderr ?? '' };
  }
}
