import { defineConfig } from 'vitest/config';

// `npm run test:aws-local`: sessions end to end through the deployed shape on this machine
// (issue 22): the synthesized template's definition, function bundles and runner task, with
// only the AWS services stood in for (test/aws-local/). Kept out of `npm test` (the files end in
// .aws.ts); one file at a time, each session runs real Ansible and mksquashfs on 2 cores.
export default defineConfig({
  test: {
    globalSetup: ['test/global-setup.ts'],
    include: ['test/aws-local/**/*.aws.ts'],
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 180_000,
  },
});
