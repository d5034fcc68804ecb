import { describe, expect, it } from 'vitest';
import { fingerprint, sessionImageFingerprint, type FingerprintInputs } from '../../functions/core/automations/fingerprint.ts';
import type { SessionRecord } from '../../functions/core/model/session.ts';

const inputs: FingerprintInputs = {
  rootfs_sha256: '1'.repeat(64),
  layers: [
    { clone_url: 'https://git.example/site.git', commit: 'a'.repeat(40), playbook: 'site.yml' },
    { clone_url: 'https://git.example/extra.git', commit: 'b'.repeat(40), playbook: 'extra.yml' },
  ],
  ansible_limit: '',
  ansible_passthrough: '',
  configuration_limit: '',
  groups: ['Compute', 'Application'],
  runner_version: '0.1.0+runner.1',
};

describe('the input fingerprint', () => {
  it('is a sha256 that is the same for the same inputs', () => {
    // Arrange
    const copy = structuredClone(inputs);
    // Act
    const a = fingerprint(inputs);
    const b = fingerprint(copy);
    // Assert
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(b).toBe(a);
  });

  it.each<[string, (i: FingerprintInputs) => void]>([
    ['the rootfs digest', (i) => (i.rootfs_sha256 = '2'.repeat(64))],
    ['a layer commit', (i) => (i.layers[1]!.commit = 'c'.repeat(40))],
    ['a layer clone URL', (i) => (i.layers[0]!.clone_url = 'https://git.example/other.git')],
    ['a layer playbook', (i) => (i.layers[0]!.playbook = 'other.yml')],
    ['the layer order', (i) => i.layers.reverse()],
    ['the ansible limit', (i) => (i.ansible_limit = 'Compute')],
    ['the passthrough', (i) => (i.ansible_passthrough = '--tags a')],
    ['the configuration limit', (i) => (i.configuration_limit = '0')],
    ['the groups', (i) => (i.groups = ['Compute'])],
    ['the runner version', (i) => (i.runner_version = '0.2.0+runner.1')],
  ])('changes when %s changes', (_what, change) => {
    // Arrange
    const changed = structuredClone(inputs);
    change(changed);
    // Act
    const value = fingerprint(changed);
    // Assert
    expect(value).not.toBe(fingerprint(inputs));
  });

  it('ignores credentials in clone URLs and the order of groups', () => {
    // Arrange
    const other = structuredClone(inputs);
    other.layers[0]!.clone_url = 'https://user:secret@git.example/site.git';
    other.groups = ['Application', 'Compute', 'Compute'];
    // Act
    const value = fingerprint(other);
    // Assert
    expect(value).toBe(fingerprint(inputs));
  });

  it('of a session image takes the session pinned layers and settings and only the groups that image is in', () => {
    // Arrange
    const image = '0f1e2d3c-4b5a-4697-8a8b-9c0d1e2f3a4b';
    const session = {
      name: 's',
      configuration: { name: 'c', limit: '' },
      ansible: { config: 'cfs-default-ansible-cfg', limit: '', verbosity: 0, passthrough: '' },
      target: {
        definition: 'image',
        groups: [
          { name: 'Compute', members: [image] },
          { name: 'Application', members: [image] },
          { name: 'Other', members: ['1a2b3c4d-5e6f-4a0b-9c1d-2e3f4a5b6c7d'] },
        ],
        image_map: [],
      },
      tags: {},
      debug_on_failure: false,
      status: {
        session: { status: 'pending', succeeded: 'none', start_time: '' },
        artifacts: [],
        layers: inputs.layers.map((l, i) => ({ name: `layer${i}`, ...l })),
      },
    } as SessionRecord;
    // Act
    const value = sessionImageFingerprint(session, image, inputs.rootfs_sha256, inputs.runner_version);
    // Assert
    expect(value).toBe(fingerprint(inputs));
  });
});
