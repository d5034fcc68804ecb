// Bundles the CLI and the runner into dist/ so `npx cfs` starts fast with no TypeScript loader.
// Runs from `prepare` (so `npm ci` leaves a working `cfs`) and before tests and the demo.
import { build } from 'esbuild';
import { cpSync, readdirSync, rmSync, writeFileSync } from 'node:fs';

// The stamp test/global-setup.ts compares sources against: gone while a build runs, so an
// interrupted build is never taken for a current one.
rmSync('dist/.build-stamp', { force: true });

await build({
  entryPoints: {
    cli: 'functions/cli/main.ts',
    runner: 'functions/runner/main.ts',
  },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'esm',
  packages: 'external',
  // Commands load heavy modules (dynalite, the AWS SDK, the engine) with import(): splitting keeps
  // them out of the chunk every command loads, so `cfs sessions describe` starts fast.
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  sourcemap: 'linked',
  logLevel: 'warning',
});

// The deployed bundles (lib/ deploys exactly these, the bench measures them): one self-contained,
// minified ESM file per Lambda handler in dist/lambda/<name>/index.mjs (every file directly in
// functions/handlers/ is an entry point), and the runner for its container image in
// dist/runner-image/runner.mjs, packages included so the image needs no node_modules.

const handlers = readdirSync('functions/handlers').filter((file) => file.endsWith('.ts'));
// zod's `z` namespace re-exports every locale's error messages (about 250 KB minified), which a
// namespace import keeps whole. Nothing here uses them (the default English messages are
// configured separately), so the bundles get an empty locale list instead.
const withoutZodLocales = {
  name: 'without-zod-locales',
  setup(esbuild) {
    esbuild.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]zod[\\/]v4[\\/](classic|core)[\\/]/.test(args.importer) ? { path: 'zod-locales', namespace: 'without-zod-locales' } : undefined,
    );
    esbuild.onLoad({ filter: /.*/, namespace: 'without-zod-locales' }, () => ({ contents: 'export {};', loader: 'js' }));
  },
};
// In Lambda the credentials are always in the environment (AWS_ACCESS_KEY_ID, ...), so the
// handlers' SDK clients get the environment provider instead of the whole default chain (SSO,
// profiles, web identity, instance metadata and the STS/SSO clients behind them: ~90 KB per bundle).
const lambdaCredentialsFromEnv = {
  name: 'lambda-credentials-from-env',
  setup(esbuild) {
    esbuild.onResolve({ filter: /^@aws-sdk\/credential-provider-node$/ }, (args) => ({ path: args.path, namespace: 'lambda-credentials-from-env', pluginData: args.resolveDir }));
    esbuild.onLoad({ filter: /.*/, namespace: 'lambda-credentials-from-env' }, (args) => ({
      contents: "export { fromEnv as defaultProvider } from '@aws-sdk/credential-provider-env';",
      resolveDir: args.pluginData,
      loader: 'js',
    }));
  },
};
const selfContained = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  // ESM builds of the AWS SDK tree-shake far better than its CommonJS ones.
  mainFields: ['module', 'main'],
  // CommonJS left in a dependency may still require() Node's built-ins.
  banner: { js: "import { createRequire as __cfsCreateRequire } from 'node:module'; const require = __cfsCreateRequire(import.meta.url);" },
  minify: true,
  legalComments: 'none',
  plugins: [withoutZodLocales],
  logLevel: 'warning',
};
await Promise.all([
  ...handlers.map((file) =>
    build({
      ...selfContained,
      entryPoints: [`functions/handlers/${file}`],
      outfile: `dist/lambda/${file.replace(/\.ts$/, '')}/index.mjs`,
      target: 'node24',
      plugins: [...selfContained.plugins, lambdaCredentialsFromEnv],
    }),
  ),
  build({ ...selfContained, entryPoints: ['functions/runner/main.ts'], outfile: 'dist/runner-image/runner.mjs', target: 'node24' }),
]);

// The API function serves the dashboard too: its static files ship beside the API bundle
// (dist/lambda/api/dashboard/), where functions/handlers/api.ts finds them.
rmSync('dist/lambda/api/dashboard', { recursive: true, force: true });
cpSync('dashboard', 'dist/lambda/api/dashboard', { recursive: true });

writeFileSync('dist/.build-stamp', `${new Date().toISOString()}\n`);
