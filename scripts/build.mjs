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
  sourcemap: 'linked',
  logLevel: 'warning',
});
