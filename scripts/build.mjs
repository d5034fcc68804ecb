// Bundles the CLI and the runner into dist/ so `npx cfs` starts fast with no TypeScript loader.
// Runs from `prepare` (so `npm ci` leaves a working `cfs`) and before tests and the demo.
import { build } from 'esbuild';

await build({
  entryPoints: {
    cli: 'functions/cli/main.ts',
    runner: 'functions/runner/main.ts',
  },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  packages: 'external',
  // Commands load heavy modules (dynalite, the AWS SDK, the engine) with import(): splitting keeps
  // them out of the chunk every command loads, so `cfs sessions describe` starts fast.
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  sourcemap: 'linked',
  logLevel: 'warning',
});
