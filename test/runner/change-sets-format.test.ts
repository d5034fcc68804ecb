import { describe, expect, it } from 'vitest';
import { ChangeSetFormatError, decodeDumpName, encodeDumpName, parseXattrDump, pseudoPath } from '../../functions/runner/change-sets/format.ts';
import { parsePseudoDevices } from '../../functions/runner/change-sets/restore.ts';
import { compareSnapshots, type SnapshotEntry, type TreeSnapshot } from '../../functions/runner/change-sets/tree-compare.ts';

describe('the names written for mksquashfs and read from getfattr', () => {
  it('escapes a backslash, a double quote, a space and a tab for a pseudo definition, and refuses a line break', () => {
    // Arrange
    const name = 'a b"c\\d\te/é';

    // Act
    const written = pseudoPath(name);

    // Assert
    expect(written).toBe('a\\ b\\"c\\\\d\\\te/é');
    expect(() => pseudoPath('line\nbreak')).toThrow(ChangeSetFormatError);
  });

  it("reads getfattr's octal escapes back, and writes names setfattr reads the same way", () => {
    // Arrange
    const dump = ['# file: ./g\\012h/c\\134d', 'user.t=0x31', '', '# file: ./a b/é', 'trusted.overlay.opaque="y"', 'user.two=0x32', ''].join('\n');

    // Act
    const entries = parseXattrDump(dump);
    const roundTrip = decodeDumpName(encodeDumpName('x\ny\\z é'));

    // Assert
    expect(entries.map((e) => e.path)).toEqual(['./g\nh/c\\d', './a b/é']);
    expect([...entries[1]!.attributes]).toEqual([
      ['trusted.overlay.opaque', '"y"'],
      ['user.two', '0x32'],
    ]);
    expect(roundTrip).toBe('x\ny\\z é');
  });

  it('reads the device lines of an unsquashfs pseudo file, backslash-escaped names included, and stops at its data', () => {
    // Arrange
    const text = ['/ D 1796595787 755 0 0', 'dev/a\\ b C 1577934245 640 7 8 1 3', 'dev/blk B 1 600 0 6 8 0', 'f R 1796595787 644 0 0 3 0', '#', 'dev/x C 1 600 0 0 9 9'].join('\n');

    // Act
    const devices = parsePseudoDevices(text);

    // Assert
    expect(devices).toEqual([
      { path: 'dev/a b', type: 'c', mtime: 1577934245, mode: 0o640, uid: 7, gid: 8, major: 1, minor: 3 },
      { path: 'dev/blk', type: 'b', mtime: 1, mode: 0o600, uid: 0, gid: 6, major: 8, minor: 0 },
    ]);
  });
});

const entry = (type: string, ino: number, extra: Partial<SnapshotEntry> = {}): SnapshotEntry => ({
  ino: BigInt(ino),
  type,
  mode: 0o755,
  uid: 0,
  gid: 0,
  size: 0n,
  mtimeNs: 1n,
  ctimeNs: 1n,
  nlink: 1,
  rdev: 0,
  ...extra,
});
const snapshot = (entries: Record<string, SnapshotEntry>): TreeSnapshot => ({ entries: new Map(Object.entries(entries)) });

describe('compareSnapshots (the tree-compare capture)', () => {
  it('finds added and changed entries, marks a replaced directory opaque with all it holds, and whites out only the top of a removed subtree', () => {
    // Arrange
    const before = snapshot({
      '': entry('d', 1),
      etc: entry('d', 2),
      'etc/motd': entry('f', 3),
      'etc/same': entry('f', 4),
      var: entry('d', 5),
      'var/old': entry('d', 6),
      'var/old/log': entry('f', 7),
      opt: entry('d', 8),
      'opt/app': entry('d', 9),
      'opt/app/lib': entry('f', 10),
      usr: entry('f', 11),
    });
    const after = snapshot({
      '': entry('d', 1, { mtimeNs: 2n }),
      etc: entry('d', 2),
      'etc/motd': entry('f', 3, { ctimeNs: 5n }),
      'etc/same': entry('f', 4),
      'etc/new': entry('f', 12),
      var: entry('d', 5, { mtimeNs: 2n }),
      opt: entry('d', 8, { mtimeNs: 2n }),
      'opt/app': entry('d', 13),
      'opt/app/bin': entry('f', 14),
      usr: entry('d', 15),
    });

    // Act
    const difference = compareSnapshots(before, after);

    // Assert
    expect(difference.changed.sort()).toEqual(['etc/motd', 'etc/new', 'opt', 'opt/app', 'opt/app/bin', 'usr', 'var']);
    expect(difference.opaque.sort()).toEqual(['opt/app', 'usr']);
    expect(difference.removed).toEqual(['var/old']);
  });

  it('takes a directory made again on its freed inode number for the old one: its old entries whited out, its new ones recorded, nothing opaque', () => {
    // Arrange
    const before = snapshot({ '': entry('d', 1), app: entry('d', 2), 'app/lib': entry('f', 3), 'app/keep': entry('f', 4) });
    const after = snapshot({
      '': entry('d', 1),
      app: entry('d', 2, { mtimeNs: 2n, ctimeNs: 2n }),
      'app/bin': entry('f', 3, { mtimeNs: 2n, ctimeNs: 2n }),
      'app/keep': entry('f', 5, { ctimeNs: 2n }),
    });

    // Act
    const difference = compareSnapshots(before, after);

    // Assert
    expect(difference.opaque).toEqual([]);
    expect(difference.changed.sort()).toEqual(['app', 'app/bin', 'app/keep']);
    expect(difference.removed).toEqual(['app/lib']);
  });
});
