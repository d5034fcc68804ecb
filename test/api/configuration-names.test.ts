import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configurationNameProblem } from '../../functions/core/configurations/configuration-rules.ts';
import { call, startCfsTestApp, type CfsTestApp } from './cfs-app.ts';

// Issue 17, item 6: a configuration name is a path segment, a table key and a word in logs:
// control and format characters, line breaks, slashes and '..' are refused with a 400 naming
// the field, on the configuration itself and where a session names one.

const COMMIT = 'd'.repeat(40);
const BODY = { layers: [{ clone_url: 'https://git.example/repo.git', commit: COMMIT, playbook: 'site.yml' }] };
const BAD_NAMES = ['a\u0000b', 'line\nbreak', 'tab\there', '../etc', 'a/b', 'a\\b', 'x..y', '..x', 'bidi\u202eexe', 'sep\u2028x', 'x'.repeat(61)];

describe('configuration names', () => {
  let t: CfsTestApp;
  beforeAll(async () => void (t = await startCfsTestApp()));
  afterAll(async () => t.close());

  it.each(BAD_NAMES.map((n) => [JSON.stringify(n).slice(0, 30), n]))('refuses the configuration name %s with a 400 naming name, storing nothing', async (_shown, name) => {
    // Act
    const put = await call(t.app, 'PUT', `/apis/cfs/v3/configurations/${encodeURIComponent(name)}`, BODY);

    // Assert
    expect(put.status, put.text).toBe(400);
    expect(put.body.field).toBe('name');
    expect(await t.ports.configurations.list()).toEqual([]);
  });

  it('refuses the dot segments, which a URL path cannot carry, in the rule itself', () => {
    // Act / Assert
    expect(configurationNameProblem('.')).toMatch(/'\.\.'/);
    expect(configurationNameProblem('..')).toMatch(/'\.\.'/);
  });

  it.each(['compute-23.7.0', 'My_Config', 'management csm'])('accepts the configuration name %s', async (name) => {
    // Act
    const put = await call(t.app, 'PUT', `/apis/cfs/v3/configurations/${encodeURIComponent(name)}`, BODY);

    // Assert
    expect(put.status, put.text).toBe(200);
    expect(put.body.name).toBe(name);
    await t.ports.configurations.delete(name);
  });

  it.each([
    ['/apis/cfs/v3/sessions', 'configuration_name'],
    ['/apis/cfs/v2/sessions', 'configurationName'],
  ])('refuses a session at %s naming a configuration with a line break, blaming %s', async (path, field) => {
    // Act
    const created = await call(t.app, 'POST', path, { name: 'names-test', [field]: 'evil\nname', target: { definition: 'image', groups: [] } });

    // Assert
    expect(created.status, created.text).toBe(400);
    expect(created.body.field).toBe(field);
  });
});
