import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FsArtifactStore } from '../../functions/adapters/local/fs-artifact-store.ts';
import { parseValidationSpec } from '../../functions/core/sessions/validation-spec.ts';
import type { ImageTests } from '../../functions/core/workflow/run-document.ts';
import { BootTester } from '../../functions/runner/image-tests.ts';
import { ProcessGroups } from '../../functions/runner/process-groups.ts';
import { ProgressRecorder } from '../../functions/runner/progress.ts';
import { workspaceLayout } from '../../functions/runner/workspace.ts';
import { tempDirPerTest } from '../helpers/temp-dir.ts';

const IMAGE = '6c2d8e1f-0a3b-4c5d-9e6f-7a8b9c0d1e2f';

describe('the boot test of a packed result', () => {
  const dir = tempDirPerTest('cfs-image-tests-');

  it('fails the image at test, not at packaging, when the VM cannot be run at all, and records the boot as failed', async () => {
    // Arrange: a kernel file that is gone by the time QEMU's sandbox would open it.
    const layout = workspaceLayout(join(dir(), 'workspace'));
    await mkdir(layout.logs, { recursive: true });
    const rootfs = join(dir(), 'rootfs');
    await writeFile(rootfs, 'not booted');
    const store = new FsArtifactStore(join(dir(), 'store'));
    const validation = parseValidationSpec({ boot: { success_pattern: 'up' } })!;
    const document = { session: 's1', layers: [], images: [{ image_id: IMAGE }], validation, progress_key: 'runner/progress.json' } as const;
    const progress = new ProgressRecorder(document as never, store, () => new Date());
    const tester = new BootTester(
      { document: { logs_prefix: 'runner/logs/' }, validation, layout, groups: new ProcessGroups(), mapping: undefined, network: 'none', store, progress, now: () => new Date(), log: () => {} },
      validation.boot!,
    );
    const record: { tests?: ImageTests } = {};
    // Act
    const testing = tester.test(IMAGE, { rootfs, kernel: join(dir(), 'no-kernel'), initrd: join(dir(), 'no-initrd') }, record);
    // Assert
    await expect(testing).rejects.toMatchObject({ name: 'RunnerFailure', kind: 'test', context: { image: IMAGE }, message: expect.stringMatching(/^image \S+ failed its boot test: the VM could not be run: .*ENOENT/) });
    const written = JSON.parse(await readFile(store.pathOf('runner/progress.json'), 'utf8'));
    expect(written.tests[0]).toMatchObject({ image_id: IMAGE, state: 'failed', boot: { state: 'failed' } });
  });
});
