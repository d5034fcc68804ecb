import { describe, expect, it } from 'vitest';
import { parseExtraVars, parseKeyValue, unsafeExtraVarsYaml } from '../../functions/core/sessions/extra-vars.ts';
import { assertSafeExtraVars, parsePassthrough, shlexSplit } from '../../functions/core/sessions/passthrough.ts';
import { refusal } from '../helpers/refusal.ts';

describe('ansible_passthrough parsing', () => {
  it('splits words like a POSIX shell, honouring both quote kinds and backslashes', () => {
    // Act
    const words = shlexSplit(`-e 'a=1 b=2' --tags "x y" --skip-tags z\\ w`);
    // Assert
    expect(words).toEqual(['-e', 'a=1 b=2', '--tags', 'x y', '--skip-tags', 'z w']);
  });

  it('normalizes every allowed flag form to long options with one value each', () => {
    // Act
    const argv = parsePassthrough(`-e a=1 --extra-vars=b=2 -ec=3 -f 5 --forks=7 -f9 --skip-tags s -t t1 --tags=t2 --start-at-task "Install pkgs"`);
    // Assert
    expect(argv).toEqual([
      '--extra-vars', 'a=1', '--extra-vars', 'b=2', '--extra-vars', 'c=3',
      '--forks', '5', '--forks', '7', '--forks', '9',
      '--skip-tags', 's', '--tags', 't1', '--tags', 't2', '--start-at-task', 'Install pkgs',
    ]);
  });

  it('accepts unambiguous prefixes of long options as argparse does', () => {
    // Act
    const argv = parsePassthrough('--extra x=1 --fork 3 --start-at "t"');
    // Assert
    expect(argv).toEqual(['--extra-vars', 'x=1', '--forks', '3', '--start-at-task', 't']);
  });

  it('is empty for an empty string', () => {
    expect(parsePassthrough('   ')).toEqual([]);
  });

  it.each([
    ['-v', "option '-v' is not allowed"],
    ['--become', "option '--become' is not allowed"],
    ['-i hosts', "option '-i' is not allowed"],
    ['site.yml', "unexpected argument 'site.yml'"],
    ['--forks x', 'expects an integer'],
    ['--forks 0', 'must be at least 1'],
    ['--tags', 'expects one argument'],
    ['--tags --forks 3', "option '--tags' expects one argument"],
    ["-e 'a=1", 'unclosed'],
    ['-- -e a=1', "unexpected argument '--'"],
    ['--tags=-v', "the value of '--tags' must not start with '-' or '@'"],
    ['-t@/etc/shadow', "the value of '-t' must not start with '-' or '@'"],
    ['--skip-tags=@x', "the value of '--skip-tags' must not start with '-' or '@'"],
    ['--start-at-task=--list-hosts', "the value of '--start-at-task' must not start with '-' or '@'"],
    [`-e '{a: !vault "x"}'`, 'no vault password'],
    [`-e '{"a": {"__ansible_vault": "x"}}'`, 'vault-encrypted extra vars are not supported'],
    [`-e 'a={{ b'`, 'unbalanced Jinja2 block'],
    [`-e '{a: [1, 2], [1]: 2}'`, 'may not use a list or mapping as a key'],
  ])('refuses %s naming ansible_passthrough', (text, expected) => {
    // Act
    const error = refusal(() => parsePassthrough(text));
    // Assert
    expect(error.name).toBe('ValidationError');
    expect(error.field).toBe('ansible_passthrough');
    expect(error.message).toContain(expected);
  });

  it.each([
    ['-e ansible_connection=local', 'key=value'],
    ['-e "x=1 ansible_host=/"', 'second key=value word'],
    ['--extra-vars=ANSIBLE_CONNECTION=local', 'upper case'],
    [`-e '{"ansible_connection": "local"}'`, 'JSON'],
    [`-e '{a: 1, ansible_python_interpreter: /usr/bin/python3}'`, 'YAML flow mapping'],
    [`-e '{"\\u0061nsible_connection": "local"}'`, 'JSON with a unicode escape in the key'],
    [`-e '{a: 1, <<: {ansible_connection: local}}'`, 'a YAML merge key'],
    [`-e '{? ansible_chroot_exe : /bin/sh}'`, 'a YAML explicit key'],
    [`-e '\\x61nsible_connection=local'`, 'an escape sequence Ansible would decode'],
    [`-e '"ansible_connection"=local'`, 'a quoted key'],
    [`-e '{"a": 1, "a": 2, "ansible_become": true}'`, 'JSON with a duplicate key'],
    [`-e 'cfs_image_roots={}'`, "the runner's map of image roots"],
    [`-e '{"inventory_hostname": "other"}'`, 'the magic variable the pinned connection looks roots up by'],
    ['-e hostvars=x', 'another magic variable'],
    [`-e '{base: &b {ansible_connection: local}, <<: *b}'`, 'an anchored mapping merged in'],
    ['-e @vars.yml', 'a file'],
    ['-e /etc/vars.yml', 'a bare file name'],
  ])('refuses an extra var that sets an ansible_* variable or reads a file: %s (%s)', (text) => {
    // Act
    const error = refusal(() => parsePassthrough(text));
    // Assert
    expect(error.field).toBe('ansible_passthrough');
    expect(error.message).toMatch(/ansible_|file/i);
  });

  it('accepts ordinary extra vars in all three forms', () => {
    // Act / Assert
    expect(() => assertSafeExtraVars('role=compute debug=true')).not.toThrow();
    expect(() => assertSafeExtraVars('{"packages": ["vim"], "nested": {"ansible_like": 1}}')).not.toThrow();
    expect(() => assertSafeExtraVars('{motd: "built by cfs"}')).not.toThrow();
  });

  it('refuses extra vars in YAML form that are not a mapping or not valid', () => {
    expect(refusal(() => assertSafeExtraVars('[1, 2]')).message).toContain('mapping');
    expect(refusal(() => assertSafeExtraVars('{a: [}')).message).toContain('not valid YAML');
  });

  it('reads key=value words as Ansible does: quotes, Jinja2 blocks and escapes keep a value whole', () => {
    // Act
    const vars = parseKeyValue(`a=1 b="two words" c={{ lookup('pipe', 'id') }} d=x\\=y e=\\x41 plain word`);
    // Assert
    expect(vars).toEqual({ a: '1', b: 'two words', c: "{{ lookup('pipe', 'id') }}", d: 'x\\=y', e: 'A', _raw_params: 'plain word' });
  });

  it('keeps the type PyYAML gives each scalar and tags every string !unsafe when written back', () => {
    // Arrange
    const value = `{a: yes, b: "{{ x }}", c: 010, d: 2001-12-14, e: ~, f: [y, 1.5], g: {h: 'i'}, <<: {a: 2, z: 3}}`;
    // Act
    const yaml = unsafeExtraVarsYaml(parseExtraVars(value)!);
    // Assert
    expect(yaml.split('\n').slice(1)).toEqual([
      '"a": !!bool "yes"',
      '"z": !!int "3"',
      '"b": !unsafe "{{ x }}"',
      '"c": !!int "010"',
      '"d": !!timestamp "2001-12-14"',
      '"e": !!null "~"',
      '"f": [!unsafe "y", !!float "1.5"]',
      '"g": {"h": !unsafe "i"}',
      '',
    ]);
  });

  it('reads JSON as JSON first, so 1e3 is a number and a quoted value a string', () => {
    // Act
    const yaml = unsafeExtraVarsYaml(parseExtraVars('{"n": 1e3, "s": "1e3", "t": true, "u": "\\u00e9\\ud83d\\ude00\\u007f"}')!);
    // Assert
    expect(yaml).toContain('"n": !!float "1e3"\n"s": !unsafe "1e3"\n"t": !!bool "true"\n"u": !unsafe "\\u00e9\\U0001f600\\u007f"\n');
  });
});
