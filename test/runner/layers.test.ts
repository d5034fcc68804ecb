import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import {
  ansiblePlaybookArgs,
  checkCloneUrl,
  checkPassthrough,
  cloneUrlScheme,
  failedHostsFromRecap,
  inventoryWithRoots,
} from '../../functions/runner/layers.ts';

describe('cloneUrlScheme', () => {
  it('reads the scheme the way git does', () => {
    // Arrange
    const urls = ['https://git.example/r.git', 'SSH://git@host/r', 'git@host:org/r.git', '/srv/git/r', './r', 'file:///srv/r', 'ext::sh -c touch% /tmp/x', 'dir/with:colon'];

    // Act
    const schemes = urls.map(cloneUrlScheme);

    // Assert
    expect(schemes).toEqual(['https', 'ssh', 'ssh', 'file', 'file', 'file', 'ext', 'file']);
  });

  it('refuses a layer whose scheme is not allowed, naming the layer', () => {
    // Arrange
    const layer = { index: 0, name: 'base', clone_url: 'ext::sh -c evil', commit: 'a'.repeat(40), playbook: 'site.yml' };

    // Act
    const attempt = () => checkCloneUrl(layer, ['https', 'ssh']);

    // Assert
    expect(attempt).toThrow(expect.objectContaining({ kind: 'input', context: { layer: 'base' }, message: expect.stringMatching(/scheme 'ext' is not allowed/) }));
  });
});

describe('checkPassthrough', () => {
  it('accepts the options CFS allows in every spelling', () => {
    // Arrange
    const tokens = ['-e', 'a=1', '--extra-vars=b=2', '-ec=3', '-f', '5', '--forks=2', '-t', 'x', '--tags', 'y', '--skip-tags', 'z', '--start-at-task', 'Install things'];

    // Act
    const attempt = () => checkPassthrough(tokens);

    // Assert
    expect(attempt).not.toThrow();
  });

  it('refuses anything else, a missing value and a non-numeric fork count', () => {
    // Arrange
    const cases = [['-i', 'other-inventory'], ['--become'], ['-e'], ['-f', 'many'], ['site.yml'], ['--module-path=/tmp']];

    // Act
    const messages = cases.map((tokens) => {
      try {
        checkPassthrough(tokens);
        return 'accepted';
      } catch (error) {
        return (error as Error).message;
      }
    });

    // Assert
    expect(messages).toEqual([
      "ansible passthrough: option '-i' is not allowed",
      "ansible passthrough: option '--become' is not allowed",
      "ansible passthrough: option '-e' needs a value",
      "ansible passthrough: option '-f' needs a whole number, got 'many'",
      "ansible passthrough: unexpected argument 'site.yml'",
      "ansible passthrough: option '--module-path' is not allowed",
    ]);
  });
});

describe('ansiblePlaybookArgs', () => {
  it('builds inventory, limit, verbosity and passthrough, with the playbook last after --', () => {
    // Arrange
    const options = { inventory: '/ws/inventory.yaml', limit: 'a,b', verbosity: 3, passthrough: ['-e', 'x=1'], playbook: 'site.yml' };

    // Act
    const args = ansiblePlaybookArgs(options);

    // Assert
    expect(args).toEqual(['--inventory', '/ws/inventory.yaml', '--limit', 'a,b', '-vvv', '-e', 'x=1', '--', 'site.yml']);
  });

  it('leaves out verbosity 0 and an empty limit', () => {
    // Arrange
    const options = { inventory: '/ws/i.yaml', limit: '', verbosity: 0, passthrough: [], playbook: 'p.yml' };

    // Act
    const args = ansiblePlaybookArgs(options);

    // Assert
    expect(args).toEqual(['--inventory', '/ws/i.yaml', '--', 'p.yml']);
  });
});

describe('inventoryWithRoots', () => {
  it('sets each image host ansible_host to its staged root and keeps the groups', () => {
    // Arrange
    const inventory = {
      all: {
        children: {
          cfs_image: { hosts: { img1: {}, img2: {} }, vars: { ansible_connection: 'community.general.chroot', cray_cfs_image: true } },
          Compute: { hosts: { img1: {} } },
        },
      },
    };

    // Act
    const written = parse(JSON.stringify(inventoryWithRoots(inventory, new Map([['img1', '/ws/images/img1'], ['img2', '/ws/images/img2']]))));

    // Assert
    expect(written.all.hosts).toEqual({ img1: { ansible_host: '/ws/images/img1' }, img2: { ansible_host: '/ws/images/img2' } });
    expect(written.all.children).toEqual(inventory.all.children);
    expect(inventory.all).not.toHaveProperty('hosts');
  });
});

describe('failedHostsFromRecap', () => {
  it('names hosts that failed or were unreachable in the last recap', () => {
    // Arrange
    const log = [
      'TASK [x] ***',
      'PLAY RECAP *********************************************************************',
      'img1                       : ok=1    changed=0    unreachable=0    failed=1    skipped=0    rescued=0    ignored=0',
      'img2                       : ok=2    changed=1    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0',
      'localhost                  : ok=0    changed=0    unreachable=1    failed=0    skipped=0    rescued=0    ignored=0',
    ].join('\n');

    // Act
    const failed = failedHostsFromRecap(log);

    // Assert
    expect(failed).toEqual(['img1', 'localhost']);
  });
});
