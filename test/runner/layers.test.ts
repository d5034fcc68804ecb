import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { RunnerFailure } from '../../functions/runner/failures.ts';
import {
  ansiblePlaybookArgs,
  checkCloneUrl,
  checkLimit,
  checkPassthrough,
  cloneUrlScheme,
  failedHostsFromRecap,
  inventoryWithRoots,
  writeInventory,
} from '../../functions/runner/layers.ts';
import { tempDirPerTest } from '../helpers/temp-dir.ts';

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
    const cases = [
      ['-i', 'other-inventory'], ['--become'], ['-e'], ['-f', 'many'], ['site.yml'], ['--module-path=/tmp'],
      ['-e', '@/etc/shadow'], ['--extra-vars=ansible_connection=local'], ['-e', '{"cfs_image_roots": {}}'], ['--tags=-v'], ['-t@/etc/shadow'], ['--start-at-task', '--list-hosts'],
    ];

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
      "ansible passthrough: option '-e': extra vars from files (@FILE) are not allowed",
      "ansible passthrough: option '--extra-vars': extra var 'ansible_connection' is not allowed (it controls the connection)",
      "ansible passthrough: option '-e': extra var 'cfs_image_roots' is not allowed (it controls the connection)",
      "ansible passthrough: the value of '--tags' must not start with '-' or '@' (an option or a file name): '-v'",
      "ansible passthrough: the value of '-t' must not start with '-' or '@' (an option or a file name): '@/etc/shadow'",
      "ansible passthrough: the value of '--start-at-task' must not start with '-' or '@' (an option or a file name): '--list-hosts'",
    ]);
  });
});

describe('ansiblePlaybookArgs', () => {
  it('builds inventory, limit, verbosity and passthrough, each extra-vars value as its file, the connection file last and the playbook after --', () => {
    // Arrange
    const options = { inventory: '/ws/inventory/inventory.yaml', limit: 'a,b', verbosity: 3, passthrough: ['-e', 'x=1', '--tags', 't', '--extra-vars', '', '-e', '{"y": 2}'], playbook: 'site.yml' };

    // Act
    const args = ansiblePlaybookArgs(options);

    // Assert
    expect(args).toEqual([
      '--inventory', '/ws/inventory/inventory.yaml', '--limit=a,b', '-vvv',
      '--extra-vars=@/ws/inventory/cfs-extra-vars-0.yml', '--tags=t', '--extra-vars=@/ws/inventory/cfs-extra-vars-1.yml',
      '--extra-vars=@/ws/inventory/cfs-connection.yml', '--', 'site.yml',
    ]);
  });

  it('leaves out verbosity 0 and an empty limit but always gives the connection file', () => {
    // Arrange
    const options = { inventory: '/ws/i.yaml', limit: '', verbosity: 0, passthrough: [], playbook: 'p.yml' };

    // Act
    const args = ansiblePlaybookArgs(options);

    // Assert
    expect(args).toEqual(['--inventory', '/ws/i.yaml', '--extra-vars=@/ws/cfs-connection.yml', '--', 'p.yml']);
  });

  it.each(['@/etc/shadow', 'img1,@/etc/shadow', 'img1:!@x', '-x', 'a b', 'a;b'])('refuses the limit %s as input', (limit) => {
    // Act
    const attempt = () => ansiblePlaybookArgs({ inventory: '/ws/i.yaml', limit, verbosity: 0, passthrough: [], playbook: 'p.yml' });

    // Assert
    expect(attempt).toThrow(expect.objectContaining({ kind: 'input', message: expect.stringContaining('ansible limit') }));
    expect(() => checkLimit(limit)).toThrow(RunnerFailure);
  });
});

describe('writeInventory', () => {
  const tempDir = tempDirPerTest('cfs-inventory-');

  it('writes the inventory, one !unsafe file per extra-vars value and the connection pinned for every host', async () => {
    // Arrange
    const dir = tempDir();
    const inventory = { all: { children: { cfs_image: { hosts: { img1: {} }, vars: { ansible_connection: 'community.general.chroot' } } } } };
    const ansible = { limit: '', verbosity: 0, passthrough: ['--extra-vars', 'x={{ lookup("pipe", "id") }}', '--tags', 't', '--extra-vars', '{"n": 1, "l": ["{{ y }}"]}'] };
    const roots = new Map([['img1', '/ws/images/img1'], ['img2', '/ws/images/img2']]);

    // Act
    await writeInventory(join(dir, 'inventory.yaml'), { inventory, ansible }, roots);

    // Assert
    expect((await readdir(dir)).sort()).toEqual(['cfs-connection.yml', 'cfs-extra-vars-0.yml', 'cfs-extra-vars-1.yml', 'inventory.yaml']);
    expect(await readFile(join(dir, 'cfs-extra-vars-0.yml'), 'utf8')).toContain('"x": !unsafe "{{ lookup(\\"pipe\\", \\"id\\") }}"');
    expect(await readFile(join(dir, 'cfs-extra-vars-1.yml'), 'utf8')).toContain('"n": !!int "1"\n"l": [!unsafe "{{ y }}"]');
    expect(parse(await readFile(join(dir, 'cfs-connection.yml'), 'utf8'))).toEqual({
      ansible_connection: 'community.general.chroot',
      ansible_host: '{{ cfs_image_roots[inventory_hostname] }}',
      ansible_chroot_exe: 'chroot',
      cfs_image_roots: { img1: '/ws/images/img1', img2: '/ws/images/img2' },
    });
    expect(parse(await readFile(join(dir, 'inventory.yaml'), 'utf8')).all.hosts).toEqual({ img1: { ansible_host: '/ws/images/img1' }, img2: { ansible_host: '/ws/images/img2' } });
  });

  it('refuses a passthrough that reads a file before writing anything', async () => {
    // Arrange
    const dir = tempDir();
    const ansible = { limit: '', verbosity: 0, passthrough: ['--extra-vars', '@/etc/shadow'] };

    // Act
    const attempt = writeInventory(join(dir, 'inventory.yaml'), { inventory: { all: { children: {} } }, ansible }, new Map());

    // Assert
    await expect(attempt).rejects.toMatchObject({ kind: 'input', message: expect.stringContaining('files (@FILE) are not allowed') });
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
