import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Issue 17, item 5: a body past a route's limit is refused while it streams, chunked or not,
// and the server never holds it. Measured on a real server process: the bytes the client had
// sent when the 413 came, and the server's resident memory (VmRSS) while the body was sent.

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MB = 1024 * 1024;
const ATTEMPTED_BYTES = 400 * MB;

function residentBytes(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) * 1024;
}

/** Starts test/api/body-limit-server.ts as a child process; resolves with its URL once it listens. */
function spawnServer(dataDir: string): Promise<{ child: ChildProcess; url: string; token: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/api/body-limit-server.ts', dataDir], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${output}`)), 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(output);
      const token = /token (\S+)/.exec(output);
      if (match && token) {
        clearTimeout(timer);
        resolve({ child, url: match[1]!, token: token[1]! });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${output}`)));
  });
}

interface Outcome {
  status: number;
  contentType: string;
  body: string;
  /** Bytes the client had handed to the socket when the answer's head arrived. */
  sentWhenAnswered: number;
  /** Whether the client had sent the whole body by then. */
  finishedSending: boolean;
}

/**
 * Sends `total` bytes of a JSON-looking body (an object whose one string never ends) as fast as
 * the socket takes them, chunked unless `declareLength`, and stops writing when the answer comes.
 */
function sendHugeBody(url: string, token: string, method: string, path: string, total: number, declareLength: boolean): Promise<Outcome> {
  const chunk = Buffer.alloc(64 * 1024, 'a');
  const head = Buffer.from('{"name": "');
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answered = false;
    const headers: Record<string, string> = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
    if (declareLength) headers['content-length'] = String(total);
    const req = request(`${url}${path}`, { method, headers });
    req.on('error', (error) => {
      // The server closes the connection after answering, but only once this side stops sending
      // (a staged close), so an error before the answer is a failure: the answer would be lost.
      if (!answered) reject(error);
    });
    req.on('response', (res) => {
      answered = true;
      const sentWhenAnswered = sent;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (text: string) => void (body += text));
      res.on('end', () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type']), body, sentWhenAnswered, finishedSending: sentWhenAnswered >= total });
      });
    });
    const pump = () => {
      while (!answered && sent < total) {
        const piece = sent === 0 ? head : chunk.subarray(0, Math.min(chunk.length, total - sent));
        sent += piece.length;
        if (!req.write(piece)) return void req.once('drain', pump);
      }
      if (!answered) req.end();
    };
    pump();
  });
}

describe('request bodies past the limit, against a real server process', () => {
  let parent: string;
  let server: { child: ChildProcess; url: string; token: string };

  beforeAll(async () => {
    parent = mkdtempSync(join(tmpdir(), 'cfs-body-limit-'));
    server = await spawnServer(join(parent, 'data'));
  }, 90_000);
  afterAll(async () => {
    if (server?.child.exitCode === null) {
      const exited = new Promise((done) => server.child.once('exit', done));
      server.child.kill('SIGTERM');
      await exited;
    }
    rmSync(parent, { recursive: true, force: true });
  });

  it.each([
    ['POST', '/apis/ims/v3/images', false],
    ['PATCH', '/apis/ims/v3/images/3fa85f64-5717-4562-b3fc-2c963f66afa6', false],
    ['PUT', '/apis/cfs/v3/configurations/huge', false],
    ['POST', '/apis/cfs/v3/sessions', false],
    ['POST', '/apis/ims/v3/images', true],
  ] as const)('answers %s %s with a 400 MB body (declared length: %s) with a 413 before the sender finishes, the server growing by under 50 MB', async (method, path, declareLength) => {
    // Arrange
    const pid = server.child.pid!;
    const before = residentBytes(pid);
    let peak = before;
    const sampler = setInterval(() => void (peak = Math.max(peak, residentBytes(pid))), 20);

    // Act
    const outcome = await sendHugeBody(server.url, server.token, method, path, ATTEMPTED_BYTES, declareLength).finally(() => clearInterval(sampler));
    peak = Math.max(peak, residentBytes(pid));

    // Assert
    expect(outcome.status, outcome.body).toBe(413);
    expect(outcome.contentType).toContain('application/problem+json');
    expect(JSON.parse(outcome.body)).toMatchObject({ status: 413, field: 'body' });
    expect(outcome.finishedSending).toBe(false);
    expect(outcome.sentWhenAnswered).toBeLessThan(50 * MB);
    expect(peak - before).toBeLessThan(50 * MB);
    // The server still answers afterwards.
    expect((await fetch(`${server.url}/apis/ims/v3/images`, { headers: { authorization: `Bearer ${server.token}` } })).status).toBe(200);
  }, 120_000);
});
