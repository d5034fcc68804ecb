import { describe, expect, it } from 'vitest';
import { cloneUrlProblem, cloneUrlScheme } from '../../functions/core/configurations/clone-url.ts';
import { configurationErrorToV2, configurationToV2, normalizeConfigurationBody } from '../../functions/core/configurations/configuration-conversion.ts';
import {
  deleteConfiguration,
  getConfiguration,
  listConfigurations,
  patchConfiguration,
  putConfiguration,
} from '../../functions/core/configurations/configuration-use-cases.ts';
import { ValidationError } from '../../functions/core/errors.ts';
import { createSession } from '../../functions/core/sessions/session-use-cases.ts';
import { advanceSession } from '../../functions/core/sessions/status.ts';
import { COMMIT_A, COMMIT_B, fakeCfsPorts, IMG1 } from '../helpers/cfs-fakes.ts';

const URL_A = 'https://git.example/a.git';
const URL_B = 'https://git.example/b.git';

async function rejection(promise: Promise<unknown>): Promise<{ name: string; field?: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { name: string; field?: string; message: string };
  }
  throw new Error('expected a rejection');
}

function portsWithBranches() {
  const ports = fakeCfsPorts('2026-11-26T12:34:56.999Z');
  ports.git.branches.set(`${URL_A}#main`, COMMIT_A);
  return ports;
}

describe('putConfiguration', () => {
  it('resolves each branch to a commit, keeps the branch and stamps last_updated', async () => {
    // Arrange
    const ports = portsWithBranches();
    // Act
    const record = await putConfiguration(ports, 'cfg', {
      description: 'compute image',
      layers: [
        { name: 'base', clone_url: URL_A, playbook: 'site.yml', branch: 'main', special_parameters: { ims_require_dkms: true } },
        { clone_url: URL_B, playbook: 'b.yml', commit: COMMIT_B },
      ],
    });
    // Assert
    expect(record).toEqual({
      name: 'cfg',
      description: 'compute image',
      last_updated: '2026-11-26T12:34:56Z',
      layers: [
        { name: 'base', clone_url: URL_A, playbook: 'site.yml', commit: COMMIT_A, branch: 'main', special_parameters: { ims_require_dkms: true } },
        { clone_url: URL_B, playbook: 'b.yml', commit: COMMIT_B },
      ],
    });
    expect(await getConfiguration(ports, 'cfg')).toEqual(record);
  });

  it('drops branches after resolving them when asked', async () => {
    // Arrange
    const ports = portsWithBranches();
    // Act
    const record = await putConfiguration(ports, 'cfg', { layers: [{ clone_url: URL_A, playbook: 'site.yml', branch: 'main' }] }, { dropBranches: true });
    // Assert
    expect(record.layers[0]).toEqual({ clone_url: URL_A, playbook: 'site.yml', commit: COMMIT_A });
  });

  it('accepts v2 spellings, read-only fields and a mix of both spellings', async () => {
    // Arrange
    const ports = portsWithBranches();
    // Act
    const record = await putConfiguration(ports, 'cfg', {
      name: 'ignored',
      lastUpdated: '2019-07-28T03:26:00Z',
      layers: [
        { cloneUrl: URL_A, playbook: 'site.yml', branch: 'main', specialParameters: { imsRequireDkms: false } },
        { clone_url: URL_B, playbook: 'b.yml', commit: COMMIT_B },
      ],
      additional_inventory: { cloneUrl: URL_B, commit: COMMIT_B },
    });
    // Assert
    expect(record.name).toBe('cfg');
    expect(record.last_updated).toBe('2026-11-26T12:34:56Z');
    expect(record.layers[0]).toMatchObject({ clone_url: URL_A, commit: COMMIT_A, special_parameters: { ims_require_dkms: false } });
    expect(record.additional_inventory).toEqual({ clone_url: URL_B, commit: COMMIT_B });
  });

  it('names the layer index when a branch cannot be resolved', async () => {
    // Arrange
    const ports = portsWithBranches();
    // Act
    const error = await rejection(
      putConfiguration(ports, 'cfg', {
        layers: [
          { clone_url: URL_A, playbook: 'site.yml', branch: 'main' },
          { clone_url: URL_B, playbook: 'b.yml', branch: 'nope' },
        ],
      }),
    );
    // Assert
    expect(error.name).toBe('ValidationError');
    expect(error.field).toBe('layers[1]');
    expect(error.message).toBe(`layers[1]: branch 'nope' does not exist in ${URL_B}`);
    expect(await ports.configurations.get('cfg')).toBeUndefined();
  });

  it.each([
    [{ layers: [{ clone_url: URL_A, playbook: 'p.yml', branch: 'main', commit: COMMIT_A }] }, 'layers[0]', 'not both'],
    [{ layers: [{ clone_url: URL_A, playbook: 'p.yml' }] }, 'layers[0]', 'give a branch'],
    [{ layers: [{ clone_url: URL_A, playbook: 'p.yml', commit: 'ABC' }] }, 'layers[0].commit', '40-character'],
    [{ layers: [{ clone_url: URL_A, commit: COMMIT_A }] }, 'layers[0].playbook', 'is required'],
    [{ layers: [{ playbook: 'p.yml', commit: COMMIT_A }] }, 'layers[0].clone_url', 'is required'],
    [{ layers: [{ source: 'my-source', playbook: 'p.yml', commit: COMMIT_A }] }, 'layers[0].source', 'not supported'],
    [{ layers: [{ clone_url: URL_A, playbook: '../../etc/x.yml', commit: COMMIT_A }] }, 'layers[0].playbook', 'inside the repository'],
    [{ layers: [{ clone_url: 'https://x y', playbook: 'p.yml', commit: COMMIT_A }] }, 'layers[0].clone_url', 'whitespace'],
    [
      { layers: [{ clone_url: URL_A, playbook: 'p.yml', commit: COMMIT_A }, { clone_url: URL_A, playbook: 'p.yml', commit: COMMIT_B }] },
      'layers[1]',
      'conflicts with layers[0]',
    ],
    [{ layers: [{ clone_url: URL_A, cloneUrl: URL_A, playbook: 'p.yml', commit: COMMIT_A }] }, 'layers[0].cloneUrl', 'not both'],
    [{ layers: [{ clone_url: URL_A, playbook: 'p.yml', commit: COMMIT_A, extra: 1 }] }, 'layers[0].extra', 'unknown field'],
    [{ tenant_name: 'blue', layers: [] }, 'tenant_name', 'not supported'],
    [{ layers: 'x' }, 'layers', 'must be an array'],
    [{ additional_inventory: { clone_url: URL_A } }, 'additional_inventory', 'give a branch'],
  ])('refuses %j naming %s', async (body, field, text) => {
    // Arrange
    const ports = portsWithBranches();
    // Act
    const error = await rejection(putConfiguration(ports, 'cfg', body));
    // Assert
    expect(error.name).toBe('ValidationError');
    expect(error.field).toBe(field);
    expect(error.message).toContain(text);
  });

  it('refuses a configuration name longer than 60 characters', async () => {
    expect((await rejection(putConfiguration(fakeCfsPorts(), 'x'.repeat(61), { layers: [] }))).field).toBe('name');
  });
});

describe('patchConfiguration', () => {
  it('re-resolves branches to their new commits and bumps last_updated', async () => {
    // Arrange
    const ports = portsWithBranches();
    await putConfiguration(ports, 'cfg', {
      layers: [
        { clone_url: URL_A, playbook: 'site.yml', branch: 'main' },
        { clone_url: URL_B, playbook: 'b.yml', commit: COMMIT_B },
      ],
    });
    ports.git.branches.set(`${URL_A}#main`, 'c'.repeat(40));
    ports.clock.now = () => new Date('2026-11-27T00:00:00Z');
    // Act
    const patched = await patchConfiguration(ports, 'cfg');
    // Assert
    expect(patched.layers.map((l) => l.commit)).toEqual(['c'.repeat(40), COMMIT_B]);
    expect(patched.last_updated).toBe('2026-11-27T00:00:00Z');
  });

  it('answers NotFoundError for a missing configuration', async () => {
    expect((await rejection(patchConfiguration(fakeCfsPorts(), 'nope'))).name).toBe('NotFoundError');
  });
});

describe('deleteConfiguration', () => {
  async function withSession() {
    const ports = portsWithBranches();
    await putConfiguration(ports, 'cfg', { layers: [{ clone_url: URL_A, playbook: 'site.yml', branch: 'main' }] });
    await createSession(ports, { name: 's1', configuration_name: 'cfg', target: { definition: 'image', groups: [{ name: 'Compute', members: [IMG1] }] } });
    return ports;
  }

  it('is refused with InvalidStateError while a pending session uses it, found without reading every session', async () => {
    // Arrange
    const ports = await withSession();
    ports.sessions.list = async () => {
      throw new Error('reads every session: find the active ones with query');
    };
    // Act
    const error = await rejection(deleteConfiguration(ports, 'cfg'));
    // Assert
    expect(error.name).toBe('InvalidStateError');
    expect(error.message).toContain("'s1'");
    expect(await listConfigurations(ports)).toHaveLength(1);
  });

  it('deletes once the sessions using it are complete', async () => {
    // Arrange
    const ports = await withSession();
    await ports.sessions.update('s1', (s) => advanceSession(s, { status: 'complete', succeeded: 'true' }));
    // Act
    await deleteConfiguration(ports, 'cfg');
    // Assert
    expect(await listConfigurations(ports)).toEqual([]);
  });

  it('answers NotFoundError for a missing configuration', async () => {
    expect((await rejection(deleteConfiguration(fakeCfsPorts(), 'nope'))).name).toBe('NotFoundError');
  });
});

describe('configuration shapes and clone URLs', () => {
  it('shows the stored record in v2 spelling', () => {
    // Act
    const v2 = configurationToV2({
      name: 'cfg',
      last_updated: '2026-01-01T00:00:00Z',
      layers: [{ clone_url: URL_A, playbook: 'p.yml', commit: COMMIT_A, branch: 'main', special_parameters: { ims_require_dkms: true } }],
      additional_inventory: { clone_url: URL_B, commit: COMMIT_B },
    });
    // Assert
    expect(v2).toEqual({
      name: 'cfg',
      lastUpdated: '2026-01-01T00:00:00Z',
      layers: [{ cloneUrl: URL_A, playbook: 'p.yml', commit: COMMIT_A, branch: 'main', specialParameters: { imsRequireDkms: true } }],
      additional_inventory: { cloneUrl: URL_B, commit: COMMIT_B },
    });
  });

  it('renames error fields to v2 spelling for v2 callers', () => {
    // Act
    const error = configurationErrorToV2(new ValidationError('layers[0].clone_url: is required', 'layers[0].clone_url'));
    // Assert
    expect(error.field).toBe('layers[0].cloneUrl');
    expect(error.message).toBe('layers[0].cloneUrl: is required');
  });

  it('leaves non-object bodies for the schema to refuse', () => {
    expect(normalizeConfigurationBody([1])).toEqual([1]);
  });

  it.each([
    ['https://git.example/r.git', 'https'],
    ['ssh://git@git.example/r.git', 'ssh'],
    ['git+ssh://git.example/r.git', 'ssh'],
    ['git@git.example:org/r.git', 'ssh'],
    ['file:///srv/r.git', 'file'],
    ['/srv/r.git', 'file'],
    ['ext::sh -c touch% /tmp/pwned', 'ext'],
    ['http://git.example/r.git', 'http'],
    ['git://git.example/r.git', 'git'],
  ])('reads the transport of %s as %s', (url, scheme) => {
    expect(cloneUrlScheme(url)).toBe(scheme);
  });

  it('refuses schemes outside the allow-list and option-like URLs', () => {
    const schemes = ['https', 'ssh', 'file'];
    expect(cloneUrlProblem('https://git.example/r.git', schemes)).toBeUndefined();
    expect(cloneUrlProblem('http://git.example/r.git', schemes)).toContain("uses 'http'");
    expect(cloneUrlProblem('ext::sh', schemes)).toContain("uses 'ext'");
    expect(cloneUrlProblem('--upload-pack=touch', schemes)).toContain("starts with '-'");
  });
});
