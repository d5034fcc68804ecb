import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';

/**
 * Health on the embedded composition root: the real table (dynalite), the real artifact store and
 * the real engine, asked over HTTP without a token as an operator's first command does.
 */
describe('health of the embedded runtime', () => {
  let runtime: EmbeddedRuntime;
  let dataDir: string;
  const health = async (path = '/apis/cfs/healthz') => {
    const res = await fetch(`${runtime.url}${path}`);
    return { status: res.status, body: (await res.json()) as unknown };
  };
  /** Puts a file where the directory `dir` was for the duration of `work` (a disk that stopped taking writes there). */
  const withFileInsteadOf = async <T>(dir: string, work: () => Promise<T>): Promise<T> => {
    mkdirSync(dir, { recursive: true });
    renameSync(dir, `${dir}.kept`);
    writeFileSync(dir, 'not a directory');
    try {
      return await work();
    } finally {
      rmSync(dir, { force: true });
      renameSync(`${dir}.kept`, dir);
    }
  };

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'cfs-health-'));
    runtime = await startEmbeddedRuntime({ dataDir, port: 0 });
  });
  afterAll(async () => {
    await runtime?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('answers 200 with the stores and the engine ok, without a token', async () => {
    // Act
    const cfs = await health();
    const ims = await health('/apis/ims/healthz/ready');
    // Assert
    expect(cfs).toEqual({ status: 200, body: { db_status: 'ok', kafka_status: 'ok' } });
    expect(ims).toEqual({ status: 200, body: {} });
  });

  it('answers 503 naming the engine while its work directory cannot take a workspace, 200 again after', async () => {
    // Act
    const broken = await withFileInsteadOf(join(dataDir, 'work'), () => health());
    const repaired = await health();
    // Assert
    expect(broken).toEqual({ status: 503, body: { db_status: 'ok', kafka_status: 'not_available' } });
    expect(repaired.status).toBe(200);
  });

  it('answers 503 naming the stores while the artifact store cannot write, and IMS readiness 500', async () => {
    // Act
    const [cfs, ims] = await withFileInsteadOf(join(dataDir, 'artifacts', 'boot-images'), () => Promise.all([health(), health('/apis/ims/healthz/ready')]));
    // Assert
    expect(cfs).toEqual({ status: 503, body: { db_status: 'not_available', kafka_status: 'ok' } });
    expect(ims).toEqual({ status: 500, body: { stores: 'not_available' } });
  });

  it('answers 503 naming the engine once the engine is shut down', async () => {
    // Arrange: a second runtime whose engine is closed under its API.
    const otherDir = mkdtempSync(join(tmpdir(), 'cfs-health-closed-'));
    const other = await startEmbeddedRuntime({ dataDir: otherDir, port: 0 });
    try {
      await other.engine.close();
      // Act
      const res = await fetch(`${other.url}/apis/cfs/healthz`);
      // Assert
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ db_status: 'ok', kafka_status: 'not_available' });
    } finally {
      await other.close();
      rmSync(otherDir, { recursive: true, force: true });
    }
  });
});
