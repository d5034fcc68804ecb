import { beforeAll, describe, expect, it } from 'vitest';
import { layerCacheKeys } from '../../functions/core/layer-cache/entry.ts';
import { pendingSession } from '../helpers/session-fixtures.ts';
import { call, cfsTestAppForSuite } from './cfs-app.ts';

/** dashboard/steps.js: plain browser JavaScript without types, loaded as the page loads it. */
interface DashboardSteps {
  cachedFromText(step: Record<string, unknown>, now?: number): string;
  packageChangeText(change: Record<string, unknown>): string;
  changesSummaryText(report: Record<string, unknown>): string;
}

const IMG = '11111111-1111-4111-8111-111111111111';
const KEY = 'a'.repeat(64);
const report = {
  key: KEY,
  image_id: IMG,
  layer_index: 0,
  files: [
    { path: '/usr/bin/hello', change: 'added', type: 'file' },
    { path: '/etc/motd', change: 'modified', type: 'file' },
    { path: '/etc/old.conf', change: 'removed', type: 'file' },
  ],
  files_truncated: false,
  packages: { manager: 'rpm', changes: [{ name: 'hello', old: null, new: '2.10-1' }, { name: 'bash', old: '5.1-1', new: '5.1-2' }, { name: 'vim', old: '9.0-1', new: null }] },
};

describe("the dashboard's layer cache texts (issue 19)", () => {
  let steps: DashboardSteps;
  beforeAll(async () => {
    steps = (await import(new URL('../../dashboard/steps.js', import.meta.url).href)) as DashboardSteps;
  });

  it('says where a cached layer came from and how old it is, and nothing for any other step', () => {
    // Arrange
    const now = Date.parse('2026-11-26T12:00:00Z');
    // Act
    const cached = steps.cachedFromText({ state: 'cached', cached_from: { session: 'nightly-3', created: '2026-11-24T12:00:00Z' } }, now);
    const ran = steps.cachedFromText({ state: 'succeeded' }, now);
    // Assert
    expect(cached).toBe('from session nightly-3, 2 d old');
    expect(ran).toBe('');
  });

  it('sums a report up in one line and words each package change', () => {
    // Act
    const summary = steps.changesSummaryText(report);
    const packages = report.packages.changes.map((c) => steps.packageChangeText(c));
    const noDatabase = steps.changesSummaryText({ ...report, packages: null, files: [report.files[0]], files_truncated: true });
    // Assert
    expect(summary).toBe('3 packages (rpm), 3 files (1 added, 1 modified, 1 removed)');
    expect(packages).toEqual(['hello: installed 2.10-1', 'bash: 5.1-1 → 5.1-2', 'vim: removed (was 9.0-1)']);
    expect(noDatabase).toBe('no package database, 1+ file (1 added, 0 modified, 0 removed)');
  });
});

describe("the dashboard's read-only view of the changes route", () => {
  const t = cfsTestAppForSuite();

  it('answers a layer report through the mirror the page reads from', async () => {
    // Arrange
    const base = pendingSession('built', { Compute: [IMG] });
    await t.ports.sessions.create({ ...base, status: { ...base.status, session: { ...base.status.session, status: 'complete', succeeded: 'true' }, layer_keys: { [IMG]: [KEY] } } });
    await t.ports.artifacts.put(layerCacheKeys.changes(KEY), JSON.stringify(report));
    // Act
    const res = await call(t.app, 'GET', `/dashboard/apis/cfs/v3/sessions/built/layers/0/changes?image_id=${IMG}`);
    // Assert
    expect(res.status).toBe(200);
    expect(res.body).toEqual(report);
  });
});
