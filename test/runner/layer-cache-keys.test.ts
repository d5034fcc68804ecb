import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { imageGroups, imageLayerKeys, layerKey, type LayerKeyInput } from '../../functions/core/layer-cache/keys.ts';

const SOURCE = 'a'.repeat(64);
const COMMIT_1 = '1'.repeat(40);
const COMMIT_2 = '2'.repeat(40);

const inventory = {
  all: {
    children: {
      cfs_image: { hosts: { imgA: {}, imgB: {} }, vars: { ansible_connection: 'community.general.chroot' } },
      Compute: { hosts: { imgA: {} } },
      Application: { hosts: { imgB: {} } },
      Site: { children: { Rack1: { hosts: { imgA: {} } } } },
    },
  },
};

const document = {
  inventory,
  layers: [
    { index: 0, name: 'base', clone_url: 'https://git.example/base.git', commit: COMMIT_1, playbook: 'site.yml' },
    { index: 1, name: 'app', clone_url: 'https://git.example/app.git', commit: COMMIT_2, playbook: 'app.yml' },
  ],
  ansible: { limit: '', verbosity: 0, passthrough: ['-e', 'x=1'] },
};

describe('layer cache keys', () => {
  it('are the sha256 of the contract JSON, fields in its order, groups sorted', () => {
    // Arrange
    const input: LayerKeyInput = {
      parent: null,
      source_rootfs_sha256: SOURCE,
      image_id: 'imgA',
      groups: ['b', 'a'],
      runner_version: '1.0.0+runner.1',
      clone_url: 'https://git.example/base.git',
      commit: COMMIT_1,
      playbook: 'site.yml',
      passthrough: ['-t', 'x'],
      limit: 'imgA',
    };
    const expected = createHash('sha256')
      .update(
        '{"v":2,"parent":null,"source_rootfs_sha256":"' +
          SOURCE +
          '","image_id":"imgA","groups":["a","b"],"runner_version":"1.0.0+runner.1","clone_url":"https://git.example/base.git","commit":"' +
          COMMIT_1 +
          '","playbook":"site.yml","passthrough":["-t","x"],"limit":"imgA"}',
      )
      .digest('hex');

    // Act
    const key = layerKey(input);

    // Assert
    expect(key).toBe(expected);
    expect(key).toMatch(/^[0-9a-f]{64}$/);
  });

  it('name the groups an image is in, nested groups included, sorted', () => {
    // Act
    const a = imageGroups(inventory, 'imgA');
    const b = imageGroups(inventory, 'imgB');
    const none = imageGroups(inventory, 'imgC');

    // Assert
    expect(a).toEqual(['Compute', 'Rack1', 'Site', 'cfs_image']);
    expect(b).toEqual(['Application', 'cfs_image']);
    expect(none).toEqual([]);
  });

  it('chain each layer on the one before it, so changing an early layer changes every later key', () => {
    // Arrange
    const image = { image_id: 'imgA', rootfs: { sha256: SOURCE } };
    const changedFirst = { ...document, layers: [{ ...document.layers[0]!, commit: '3'.repeat(40) }, document.layers[1]!] };
    const changedLast = { ...document, layers: [document.layers[0]!, { ...document.layers[1]!, playbook: 'other.yml' }] };

    // Act
    const keys = imageLayerKeys(document, image, 'v1');
    const afterFirst = imageLayerKeys(changedFirst, image, 'v1');
    const afterLast = imageLayerKeys(changedLast, image, 'v1');

    // Assert
    expect(keys).toHaveLength(2);
    expect(keys[1]).toBe(
      layerKey({
        parent: keys[0]!,
        source_rootfs_sha256: SOURCE,
        image_id: 'imgA',
        groups: ['Compute', 'Rack1', 'Site', 'cfs_image'],
        runner_version: 'v1',
        clone_url: 'https://git.example/app.git',
        commit: COMMIT_2,
        playbook: 'app.yml',
        passthrough: ['-e', 'x=1'],
        limit: '',
      }),
    );
    expect(afterFirst[0]).not.toBe(keys[0]);
    expect(afterFirst[1]).not.toBe(keys[1]);
    expect(afterLast[0]).toBe(keys[0]);
    expect(afterLast[1]).not.toBe(keys[1]);
  });

  it('differ between images of other groups, sources, runner versions, passthroughs and limits', () => {
    // Arrange
    const a = { image_id: 'imgA', rootfs: { sha256: SOURCE } };
    const b = { image_id: 'imgB', rootfs: { sha256: SOURCE } };

    // Act
    const keys = [
      imageLayerKeys(document, a, 'v1')[0],
      imageLayerKeys(document, b, 'v1')[0],
      imageLayerKeys(document, { ...a, rootfs: { sha256: 'b'.repeat(64) } }, 'v1')[0],
      imageLayerKeys(document, a, 'v2')[0],
      imageLayerKeys({ ...document, ansible: { ...document.ansible, passthrough: [] } }, a, 'v1')[0],
      imageLayerKeys({ ...document, ansible: { ...document.ansible, limit: 'imgA' } }, a, 'v1')[0],
    ];

    // Assert
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('differ between two images of one rootfs in the same groups, as a play may write its host name into each', () => {
    // Arrange
    const twins = { all: { children: { cfs_image: { hosts: { imgA: {}, imgA2: {} } }, Compute: { hosts: { imgA: {}, imgA2: {} } } } } };
    const twinDocument = { ...document, inventory: twins };

    // Act
    const a = imageLayerKeys(twinDocument, { image_id: 'imgA', rootfs: { sha256: SOURCE } }, 'v1');
    const a2 = imageLayerKeys(twinDocument, { image_id: 'imgA2', rootfs: { sha256: SOURCE } }, 'v1');

    // Assert
    expect(imageGroups(twins, 'imgA')).toEqual(imageGroups(twins, 'imgA2'));
    expect(a[0]).not.toBe(a2[0]);
    expect(a[1]).not.toBe(a2[1]);
  });
});
