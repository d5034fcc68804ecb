import { describe, expect, it } from 'vitest';
import { pinLayers } from '../../functions/core/sessions/configuration-limit.ts';
import { imageNameProblem, validateSessionRequest } from '../../functions/core/sessions/session-rules.ts';
import { v2SessionCreateSchema, v3SessionCreateSchema } from '../../functions/core/sessions/session-schemas.ts';
import { parseOrThrow } from '../../functions/core/sessions/validation.ts';
import { IMG1, IMG2, storedConfiguration } from '../helpers/cfs-fakes.ts';
import { refusal } from '../helpers/refusal.ts';

function body(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'example',
    configuration_name: 'configurations-example',
    target: {
      definition: 'image',
      groups: [
        { name: 'Application', members: [IMG1] },
        { name: 'Application_UAN', members: [IMG1, IMG2] },
      ],
      image_map: [{ source_id: IMG1, result_name: 'my-result' }],
    },
    ...extra,
  };
}

function check(input: Record<string, unknown>) {
  return validateSessionRequest(parseOrThrow(v3SessionCreateSchema, input));
}

describe('session create request rules', () => {
  it('accepts the CFS docs example and fills the v3 defaults', () => {
    // Act
    const request = check(body());
    // Assert
    expect(request).toMatchObject({
      configuration_limit: '',
      ansible_limit: '',
      ansible_config: 'cfs-default-ansible-cfg',
      ansible_verbosity: 0,
      ansible_passthrough: '',
      tags: {},
      debug_on_failure: false,
    });
    expect(request.target.groups.map((g) => g.name)).toEqual(['Application', 'Application_UAN']);
  });

  it('stores image IDs in lowercase, as IMS issues them', () => {
    // Act
    const request = check(body({ target: { definition: 'image', groups: [{ name: 'Compute', members: [IMG1.toUpperCase()] }] } }));
    // Assert
    expect(request.target.groups[0]!.members).toEqual([IMG1]);
  });

  it.each([
    [{ name: 'Bad_Name' }, 'name', 'Kubernetes name'],
    [{ name: 'a'.repeat(46) }, 'name', 'at most 45'],
    [{ name: '' }, 'name', 'must not be empty'],
    [{ name: '-lead' }, 'name', 'Kubernetes name'],
    [{ configuration_name: '' }, 'configuration_name', 'must not be empty'],
    [{ ansible_verbosity: 5 }, 'ansible_verbosity', 'from 0 to 4'],
    [{ ansible_verbosity: 1.5 }, 'ansible_verbosity', 'integer'],
    [{ ansible_limit: 'a b' }, 'ansible_limit', 'whitespace'],
    [{ ansible_limit: 'a;b' }, 'ansible_limit', "';'"],
    [{ ansible_limit: '@/etc/shadow' }, 'ansible_limit', 'must not name a file'],
    [{ ansible_limit: 'Compute,@/etc/shadow' }, 'ansible_limit', 'must not name a file'],
    [{ ansible_limit: 'Compute:!@/etc/shadow' }, 'ansible_limit', 'must not name a file'],
    [{ ansible_limit: '--list-hosts' }, 'ansible_limit', "must not start with '-'"],
    [{ ansible_passthrough: '-e @/etc/shadow' }, 'ansible_passthrough', 'files (@FILE) are not allowed'],
    [{ ansible_passthrough: '--tags=-v' }, 'ansible_passthrough', "must not start with '-' or '@'"],
    [{ ansible_config: 'my-cfg' }, 'ansible_config', 'cfs-default-ansible-cfg'],
    [{ tags: { a: 1 } }, 'tags.a', 'must be a string'],
    [{ tags: { 'a=b': 'x' } }, 'tags.a=b', "'='"],
    [{ tags: { a: 'x,y' } }, 'tags.a', "','"],
    [{ debug_on_failure: 'yes' }, 'debug_on_failure', 'boolean'],
    [{ surprise: true }, 'surprise', 'unknown field'],
    [{ ansible_passthrough: '-v' }, 'ansible_passthrough', 'not allowed'],
  ])('refuses %j naming %s', (extra, field, text) => {
    // Act
    const error = refusal(() => check(body(extra)));
    // Assert
    expect(error.name).toBe('ValidationError');
    expect(error.field).toBe(field);
    expect(error.message).toContain(`${field}: `);
    expect(error.message).toContain(text);
  });

  it.each([
    [{ definition: 'dynamic' }, 'target.definition', 'image customization only'],
    [{ definition: 'spec', groups: [{ name: 'g', members: ['x3000c0s1b0n0'] }] }, 'target.definition', 'image customization only'],
    [{ definition: 'repo' }, 'target.definition', 'image customization only'],
    [{ definition: 'nodes' }, 'target.definition', 'must be one of image, spec, repo, dynamic'],
    [{ definition: 'image' }, 'target.groups', 'at least one group'],
    [{ definition: 'image', groups: [{ name: 'Compute', members: [] }] }, 'target.groups[0].members', 'at least one image ID'],
    [{ definition: 'image', groups: [{ name: 'Compute', members: ['not-a-uuid'] }] }, 'target.groups[0].members[0]', 'not an image ID'],
    [{ definition: 'image', groups: [{ name: 'Compute', members: [IMG1, ''] }] }, 'target.groups[0].members[1]', 'not an image ID'],
    [{ definition: 'image', groups: [{ name: 'all', members: [IMG1] }] }, 'target.groups[0].name', 'reserved'],
    [{ definition: 'image', groups: [{ name: 'ungrouped', members: [IMG1] }] }, 'target.groups[0].name', 'reserved'],
    [{ definition: 'image', groups: [{ name: 'cfs_image', members: [IMG1] }] }, 'target.groups[0].name', 'reserved'],
    [{ definition: 'image', groups: [{ name: 'my-group', members: [IMG1] }] }, 'target.groups[0].name', 'not an Ansible group name'],
    [{ definition: 'image', groups: [{ name: '1st', members: [IMG1] }] }, 'target.groups[0].name', 'not an Ansible group name'],
    [
      { definition: 'image', groups: [{ name: 'A', members: [IMG1] }, { name: 'A', members: [IMG2] }] },
      'target.groups[1].name',
      'given twice',
    ],
    [{ definition: 'image', groups: [{ name: 'A', members: [IMG1] }], image_map: [{ source_id: IMG2, result_name: 'r' }] }, 'target.image_map[0].source_id', 'not a member of any target group'],
    [
      { definition: 'image', groups: [{ name: 'A', members: [IMG1, IMG2] }], image_map: [{ source_id: IMG1, result_name: 'r' }, { source_id: IMG2, result_name: 'r' }] },
      'target.image_map[1].result_name',
      'used twice',
    ],
    [
      { definition: 'image', groups: [{ name: 'A', members: [IMG1] }], image_map: [{ source_id: IMG1, result_name: 'r' }, { source_id: IMG1, result_name: 's' }] },
      'target.image_map[1].source_id',
      'mapped twice',
    ],
    [{ definition: 'image', groups: [{ name: 'A', members: [IMG1] }], image_map: [{ source_id: IMG1, result_name: 'a/b' }] }, 'target.image_map[0].result_name', "'/'"],
    [{ definition: 'image', groups: [{ name: 'A', members: [IMG1] }], image_map: [{ source_id: IMG1 }] }, 'target.image_map[0].result_name', 'is required'],
    [{ definition: 'image', groups: [{ name: 'A', members: [IMG1] }], extra: 1 }, 'target.extra', 'unknown field'],
  ])('refuses the target %j naming %s', (target, field, text) => {
    // Act
    const error = refusal(() => check(body({ target })));
    // Assert
    expect(error.field).toBe(field);
    expect(error.message).toContain(text);
  });

  it('refuses a session without a target, since CFS would default it to dynamic', () => {
    // Act
    const error = refusal(() => check({ name: 'x', configuration_name: 'c' }));
    // Assert
    expect(error.field).toBe('target.definition');
    expect(error.message).toContain("'dynamic' sessions are not served");
  });

  it.each([
    ['', 'must be 1 to 255 characters'],
    ['x'.repeat(256), 'must be 1 to 255 characters'],
    ['.', "must not be '.' or '..'"],
    ['..', "must not be '.' or '..'"],
    ['a\nb', 'control characters'],
    ['a/b', "'/'"],
  ])('finds the image name %j invalid', (name, problem) => {
    expect(imageNameProblem(name)).toContain(problem);
  });

  it('finds ordinary image names valid', () => {
    expect(imageNameProblem('cos-2.5_cfs_example')).toBeUndefined();
    expect(imageNameProblem('x'.repeat(255))).toBeUndefined();
  });

  it('parses the v2 create body with camelCase names and refuses v3 spellings there', () => {
    // Act
    const v2 = parseOrThrow(v2SessionCreateSchema, { name: 'n', configurationName: 'c', ansibleVerbosity: 2 });
    const error = refusal(() => parseOrThrow(v2SessionCreateSchema, { name: 'n', configurationName: 'c', debug_on_failure: true }));
    // Assert
    expect(v2.ansibleVerbosity).toBe(2);
    expect(error.field).toBe('debug_on_failure');
  });
});

describe('configuration_limit', () => {
  const configuration = storedConfiguration();

  it('pins every layer in order when empty, naming unnamed layers layer<index>', () => {
    // Act
    const layers = pinLayers(configuration, '');
    // Assert
    expect(layers.map((l) => l.name)).toEqual(['base', 'layer1']);
    expect(layers[0]).toEqual({ name: 'base', clone_url: 'https://git.example/base.git', commit: 'a'.repeat(40), playbook: 'site.yml' });
  });

  it('selects layers by 0-based index, in configuration order', () => {
    expect(pinLayers(configuration, '1,0').map((l) => l.name)).toEqual(['base', 'layer1']);
    expect(pinLayers(configuration, '1').map((l) => l.name)).toEqual(['layer1']);
  });

  it('selects layers by exact name, never by substring', () => {
    // Act
    const exact = pinLayers(configuration, 'base');
    const error = refusal(() => pinLayers(configuration, 'bas'));
    // Assert
    expect(exact.map((l) => l.name)).toEqual(['base']);
    expect(error.field).toBe('configuration_limit');
    expect(error.message).toContain("no layer named 'bas'");
  });

  it('refuses an index out of range instead of dropping it', () => {
    // Act
    const error = refusal(() => pinLayers(configuration, '0,2'));
    // Assert
    expect(error.field).toBe('configuration_limit');
    expect(error.message).toContain('layer index 2 is out of range');
  });
});
