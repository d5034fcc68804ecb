#!/usr/bin/env node
// The `cfs` command: the bundled CLI built by `npm run build` (run by `prepare` on `npm ci`).
import '../dist/cli.mjs';
