import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../functions/adapters/local/package-root.ts';

/**
 * Where the deployed code comes from: `npm run build` (scripts/build.mjs) bundles every file
 * directly in functions/handlers/ into dist/lambda/<name>/index.mjs (the API's with a copy of
 * dashboard/ beside it) and the runner into dist/runner-image/runner.mjs. The stack deploys those exact files, the tests synthesize
 * against them and the bench measures them: one esbuild configuration for all three.
 */
export const ROOT_DIR = packageRoot();
export const LAMBDA_BUNDLE_DIR = join(ROOT_DIR, 'dist', 'lambda');
export const RUNNER_BUNDLE = join(ROOT_DIR, 'dist', 'runner-image', 'runner.mjs');
/** Written by scripts/build.mjs once every bundle is written: its time is the build's. */
export const BUILD_STAMP = join('dist', '.build-stamp');

/** The Lambda entry points, named as their files in functions/handlers/ (without `.ts`). */
export function lambdaEntryNames(): string[] {
  return readdirSync(join(ROOT_DIR, 'functions', 'handlers'))
    .filter((file) => file.endsWith('.ts'))
    .map((file) => file.slice(0, -'.ts'.length))
    .sort();
}

/** The directory a function's code asset is made from. */
export function lambdaBundleDir(name: string): string {
  return join(LAMBDA_BUNDLE_DIR, name);
}

/** The dashboard's copy in the API bundle, served by the API function (scripts/build.mjs copies dashboard/ there). */
export const API_BUNDLE_DASHBOARD = join(LAMBDA_BUNDLE_DIR, 'api', 'dashboard', 'index.html');

/** The bundles that do not exist yet (empty once `npm run build` has run). */
export function missingBundles(): string[] {
  const lambdas = lambdaEntryNames().filter((name) => !existsSync(join(lambdaBundleDir(name), 'index.mjs')));
  return [
    ...lambdas.map((name) => `dist/lambda/${name}/index.mjs`),
    ...(existsSync(API_BUNDLE_DASHBOARD) ? [] : ['dist/lambda/api/dashboard/']),
    ...(existsSync(RUNNER_BUNDLE) ? [] : ['dist/runner-image/runner.mjs']),
  ];
}
