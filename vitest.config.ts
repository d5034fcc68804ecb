import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

/** Unit files at once: CFS_TEST_WORKERS, else one and a half per core (at least 2). */
const UNIT_WORKERS = Number(process.env.CFS_TEST_WORKERS) || Math.max(2, Math.ceil(availableParallelism() * 1.5));

// Unit, adapter and API tests run in parallel; end-to-end files (test/e2e, real Ansible and
// squashfs) run one at a time in their own project, after the unit project has finished
// (groupOrder), so two sessions never fight for 2 cores. The global setup rebuilds dist/ when a
// source is newer than it: the CLI and runner the tests start are the bundles.
export default defineConfig({
  test: {
    globalSetup: ['test/global-setup.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/e2e/**', 'node_modules/**'],
          testTimeout: 30_000,
          // Vitest's default is one worker fewer than the cores: on 2 cores, one file at a time. Most of
          // these files wait on child processes, servers and disks, so more files than cores overlap well.
          maxWorkers: UNIT_WORKERS,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 120_000,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
