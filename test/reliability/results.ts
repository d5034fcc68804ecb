import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where each case's figures go; scripts/reliability-report.mjs renders them into RELIABILITY.md. */
export const RESULTS_DIR = fileURLToPath(new URL('../../node_modules/.cache/cfs-reliability/', import.meta.url));

/** One row of RELIABILITY.md: what was tried, how many times, and what came of it. */
export interface CaseResult {
  /** Stable id, also the results file name. */
  id: string;
  /** Issue 11's heading: bad input, faults, load, security. */
  area: string;
  case: string;
  tried: number;
  result: string;
  passed: boolean;
}

/** Writes a case's row; called at the end of a test, after its assertions ran, with whether they held. */
export function recordCase(row: CaseResult): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, `${row.id}.json`), `${JSON.stringify({ ...row, at: new Date().toISOString() }, null, 2)}\n`);
}
