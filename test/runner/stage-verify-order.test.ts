import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RunImage } from '../../functions/core/workflow/run-document.ts';
import type { ArtifactStore } from '../../functions/ports/artifact-store.ts';
import { ProcessGroups } from '../../functions/runner/process-groups.ts';
import { stageImage } from '../../functions/runner/stage.ts';
import { workspaceLayout, type WorkspaceLayout } from '../../functions/runner/workspace.ts';

const IMAGE_ID = 'a0000000-0000-4000-8000-000000000001';
let dir: string;
let squashfs: string;
let layout: WorkspaceLayout;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cfs-stage-order-'));
  await mkdir(join(dir, 'tree', 'etc'), { recursive: true });
  await writeFile(join(dir, 'tree', 'etc', 'motd'), 'hello from the source\n');
  squashfs = join(dir, 'rootfs');
  execFileSync('mksquashfs', [join(dir, 'tree'), squashfs, '-no-progress', '-quiet', '-comp', 'gzip']);
  layout = workspaceLayout(join(dir, 'workspace'));
  await mkdir(layout.images, { recursive: true });
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

function image(bytes: Buffer, sha256 = createHash('sha256').update(bytes).digest('hex')): RunImage {
  return {
    image_id: IMAGE_ID,
    source_name: 'src',
    arch: 'x86_64',
    rootfs: { key: 'boot-images/src/rootfs', size: bytes.length, sha256 },
    result_name: 'res',
    result_id: 'a0000000-0000-4000-8000-000000000002',
    upload_prefix: 'boot-images/res/',
  } as RunImage;
}

/** The local store's read side only: staging in place never writes to it. */
const local = (file: string) => ({ pathOf: () => file, adopt: () => Promise.reject(new Error('staging adopts nothing')) });
const noStore = {} as ArtifactStore;

describe('stageImage with the source read in place (its sha256 checked while its metadata is listed)', () => {
  it('unpacks a source whose sha256 is the pinned one', async () => {
    // Arrange
    const bytes = await readFile(squashfs);
    // Act
    const staged = await stageImage({ image: image(bytes), layout, groups: new ProcessGroups(), store: noStore, local: local(squashfs) });
    // Assert
    expect(staged.source.compressor).toBe('gzip');
    expect(await readFile(join(staged.root, 'etc', 'motd'), 'utf8')).toBe('hello from the source\n');
  });

  it('refuses a readable squashfs of the pinned size but another sha256 and unpacks none of it', async () => {
    // Arrange
    const bytes = await readFile(squashfs);
    // Act
    const attempt = stageImage({ image: image(bytes, 'f'.repeat(64)), layout, groups: new ProcessGroups(), store: noStore, local: local(squashfs) });
    // Assert
    await expect(attempt).rejects.toThrow(/failed its checksum/);
    expect(existsSync(join(layout.images, IMAGE_ID))).toBe(false);
  });

  it('names the checksum, not the listing, when a corrupted source is neither its pinned bytes nor a squashfs', async () => {
    // Arrange: the pin is of the good bytes; the stored file's superblock is overwritten with zeros.
    const bytes = await readFile(squashfs);
    const corrupted = Buffer.from(bytes);
    corrupted.fill(0, 0, 96);
    await writeFile(squashfs, corrupted);
    // Act
    const attempt = stageImage({ image: image(bytes), layout, groups: new ProcessGroups(), store: noStore, local: local(squashfs) });
    // Assert
    await expect(attempt).rejects.toThrow(/failed its checksum/);
    expect(existsSync(join(layout.images, IMAGE_ID))).toBe(false);
  });
});
