import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsArtifactStore } from '../../functions/adapters/local/fs-artifact-store.ts';
import { main } from '../../functions/runner/main.ts';

describe('runner main', () => {
  let base: string;
  let store: FsArtifactStore;

  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'cfs-runner-main-'));
    store = new FsArtifactStore(join(base, 'store'));
  });

  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('exits 2 on a document that breaks the schema, and still records why where the document asked', async () => {
    // Arrange
    await store.put('sessions/bad/run-document.json', JSON.stringify({ session: 'bad', outcome_key: 'sessions/bad/runner-outcome.json', images: [] }));
    const argv = ['--document-key', 'sessions/bad/run-document.json', '--store-dir', store.root, '--workspace', join(base, 'ws')];

    // Act
    const exitCode = await main(argv, {});

    // Assert
    expect(exitCode).toBe(2);
    const outcome = JSON.parse(await readFile(store.pathOf('sessions/bad/runner-outcome.json'), 'utf8'));
    expect(outcome).toMatchObject({ session: 'bad', status: 'failed', reason: expect.stringMatching(/^invalid run document: images: /) });
  });

  it('exits 2 when the run document is missing or not JSON', async () => {
    // Arrange
    await store.put('sessions/garbled/run-document.json', '{ not json');
    const argv = (key: string) => ['--document-key', key, '--store-dir', store.root, '--workspace', join(base, 'ws')];

    // Act
    const missing = await main(argv('sessions/none/run-document.json'), {});
    const garbled = await main(argv('sessions/garbled/run-document.json'), {});

    // Assert
    expect([missing, garbled]).toEqual([2, 2]);
    expect(await store.list('sessions/')).toEqual(['sessions/garbled/run-document.json']);
  });
});
