import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { measureBytes, measureFile, sha256OfFile } from '../../functions/core/images/verify-artifact.ts';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cfs-measure-digests-'));
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

/** What coreutils says of a file: the reference the parallel digests must match. */
function coreutils(file: string): { md5: string; sha256: string } {
  const digest = (tool: string) => execFileSync(tool, [file], { encoding: 'utf8' }).split(' ')[0]!;
  return { md5: digest('md5sum'), sha256: digest('sha256sum') };
}

async function randomFile(name: string, size: number): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, randomBytes(size));
  return file;
}

async function measureOpened(file: string) {
  const handle = await open(file, 'r');
  try {
    return await measureFile(handle);
  } finally {
    await handle.close();
  }
}

// 3 MiB stays on one thread; 21 MiB and a few bytes crosses to the md5 worker, ending mid-buffer.
const SIZES = [3 * 1024 * 1024 + 7, 21 * 1024 * 1024 + 12345];

describe('md5 and sha256 measured on two threads', () => {
  it.each(SIZES)('measureFile gives md5sum and sha256sum digests for a file of %i bytes', async (size) => {
    // Arrange
    const file = await randomFile('bytes', size);
    // Act
    const measured = await measureOpened(file);
    // Assert
    expect(measured).toEqual({ size, ...coreutils(file) });
  });

  it.each(SIZES)('measureBytes gives md5sum and sha256sum digests for a stream of %i bytes in uneven chunks', async (size) => {
    // Arrange: 1 MiB + 3 byte chunks, one of 9 MiB among them (the worker's 4 MiB buffers split it).
    const bytes = randomBytes(size);
    const file = join(dir, 'bytes');
    await writeFile(file, bytes);
    const chunks: Buffer[] = [];
    for (let offset = 0, n = 0; offset < size; n++) {
      const length = n === 1 ? 9 << 20 : (1 << 20) + 3;
      chunks.push(bytes.subarray(offset, offset + length));
      offset += length;
    }
    // Act
    const measured = await measureBytes((async function* () { yield* chunks; })());
    // Assert
    expect(measured).toEqual({ size, ...coreutils(file) });
  });

  it('leaves the caller’s chunks as they were after handing copies to the worker', async () => {
    // Arrange
    const chunks = Array.from({ length: 6 }, () => randomBytes(4 << 20));
    const before = chunks.map((chunk) => Buffer.from(chunk));
    // Act
    await measureBytes((async function* () { yield* chunks; })());
    // Assert
    expect(chunks.every((chunk, i) => chunk.equals(before[i]!))).toBe(true);
  });

  it('sha256OfFile gives sha256sum’s digest and the size it read', async () => {
    // Arrange
    const file = await randomFile('bytes', 5 * 1024 * 1024 + 1);
    const handle = await open(file, 'r');
    // Act
    const measured = await sha256OfFile(handle).finally(() => handle.close());
    // Assert
    expect(measured).toEqual({ size: 5 * 1024 * 1024 + 1, sha256: coreutils(file).sha256 });
  });
});
