// `npm run test:reliability`: runs the reliability and security suite (vitest.reliability.config.ts),
// then renders the rows its cases wrote into RELIABILITY.md. Exits with the suite's status.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const resultsDir = join(root, 'node_modules/.cache/cfs-reliability');
const args = process.argv.slice(2);

// Rows from an earlier run must not pass for this one's.
rmSync(resultsDir, { recursive: true, force: true });
mkdirSync(resultsDir, { recursive: true });
const started = Date.now();
const run = spawnSync(process.execPath, [join(root, 'node_modules/vitest/vitest.mjs'), 'run', '--config', 'vitest.reliability.config.ts', ...args], { cwd: root, stdio: 'inherit' });
const seconds = ((Date.now() - started) / 1000).toFixed(0);

const rows = readdirSync(resultsDir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(join(resultsDir, f), 'utf8')))
  .sort((a, b) => a.area.localeCompare(b.area) || a.id.localeCompare(b.id));
const cell = (text) => String(text).replace(/\|/g, '\\|').replace(/\n/g, ' ');
const table = rows.map((r) => `| ${cell(r.area)} | ${cell(r.case)} | ${r.tried} | ${r.passed ? 'pass' : 'FAIL'}: ${cell(r.result)} |`).join('\n');

const doc = `# Reliability and security

Produced by the suite in \`test/reliability/\` (issue 11). Reproduce with:

\`\`\`sh
npm run test:reliability            # CFS_RELIABILITY_RUNS=N scales the generated cases (default 300)
\`\`\`

CI runs it after \`npm test\` (\`.ci/run\`). The load figures are this machine's; the suite checks what
the load did (every create answered and stored, nothing left after the delete), not how fast.

Last run: ${new Date().toISOString()}, ${seconds} s on ${process.platform}/${process.arch}, Node ${process.version};
the suite ${run.status === 0 ? 'passed' : `FAILED (exit ${run.status})`}. A case missing from the table did not finish.

The server killed mid-session and restarted is covered by \`test/e2e/server-restart.test.ts\` (run by
\`npm test\`): the session fails with "interrupted by a server restart", the orphaned runner is killed
and its workspace removed.

| Area | Case | Tried | Result |
| --- | --- | ---: | --- |
${table}
`;
writeFileSync(join(root, 'RELIABILITY.md'), doc);
console.log(`RELIABILITY.md: ${rows.length} cases`);
process.exit(run.status ?? 1);
