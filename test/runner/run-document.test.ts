import { describe, expect, it } from 'vitest';
import { layerLogKey } from '../../functions/core/workflow/session-keys.ts';
import { runDocumentSchema } from '../../functions/core/workflow/run-document.ts';
import { parseRunDocument } from '../../functions/runner/run-document.ts';

const SHA = 'a'.repeat(64);
const COMMIT = 'b'.repeat(40);

function validDocument(): Record<string, unknown> {
  return {
    session: 'example',
    images: [
      {
        image_id: '0b8c6a5e-3f43-4a8e-9e0f-2f7a8f0c0a01',
        source_name: 'compute',
        arch: 'x86_64',
        rootfs: { key: 'boot-images/0b8c6a5e-3f43-4a8e-9e0f-2f7a8f0c0a01/rootfs', size: 10, sha256: SHA },
        result_name: 'compute_cfs_example',
        result_id: '9f8e7d6c-0000-4000-8000-000000000001',
        upload_prefix: 'boot-images/9f8e7d6c-0000-4000-8000-000000000001/',
      },
    ],
    inventory: { all: { children: { cfs_image: { hosts: { '0b8c6a5e-3f43-4a8e-9e0f-2f7a8f0c0a01': {} } } } } },
    layers: [{ index: 0, name: 'base', clone_url: 'https://git.example/base.git', commit: COMMIT, playbook: 'site.yml' }],
    ansible: { limit: '0b8c6a5e-3f43-4a8e-9e0f-2f7a8f0c0a01', verbosity: 2, passthrough: ['-e', 'x=1'] },
    squashfs: { compressor: 'source' },
    allowed_schemes: ['https', 'ssh'],
    outcome_key: 'sessions/example/runner-outcome.json',
    logs_prefix: 'sessions/example/logs/',
  };
}

describe('parseRunDocument', () => {
  it('accepts the document render-inventory writes', () => {
    // Arrange
    const raw = validDocument();

    // Act
    const document = parseRunDocument(raw);

    // Assert
    expect(document.images[0]?.upload_prefix).toBe('boot-images/9f8e7d6c-0000-4000-8000-000000000001/');
    expect(document.ansible.verbosity).toBe(2);
  });

  it('names every broken field in one input failure', () => {
    // Arrange
    const raw = validDocument();
    (raw.layers as Record<string, unknown>[])[0]!.commit = 'main';
    (raw.ansible as Record<string, unknown>).verbosity = 7;

    // Act
    const attempt = () => parseRunDocument(raw);

    // Assert
    expect(attempt).toThrow(expect.objectContaining({ kind: 'input', message: expect.stringMatching(/layers\.0\.commit: must be a full commit id.*ansible\.verbosity/) }));
  });

  it('refuses keys and playbook paths that could leave their place', () => {
    // Arrange
    const escapes: [string, (d: Record<string, unknown>) => void][] = [
      ['outcome key with ..', (d) => (d.outcome_key = 'sessions/../../etc/passwd')],
      ['upload prefix without trailing slash', (d) => ((d.images as Record<string, unknown>[])[0]!.upload_prefix = 'boot-images/x')],
      ['absolute playbook', (d) => ((d.layers as Record<string, unknown>[])[0]!.playbook = '/etc/shadow')],
      ['playbook going up', (d) => ((d.layers as Record<string, unknown>[])[0]!.playbook = '../x.yml')],
      ['clone URL read as an option', (d) => ((d.layers as Record<string, unknown>[])[0]!.clone_url = '--upload-pack=touch /tmp/x')],
      ['limit with a space', (d) => ((d.ansible as Record<string, unknown>).limit = 'a b')],
    ];

    // Act
    const results = escapes.map(([what, mutate]) => {
      const raw = validDocument();
      mutate(raw);
      return [what, runDocumentSchema.safeParse(raw).success];
    });

    // Assert
    expect(results).toEqual(escapes.map(([what]) => [what, false]));
  });

  it('refuses duplicate image ids and a level for a compressor that takes none', () => {
    // Arrange
    const duplicate = validDocument();
    const images = duplicate.images as Record<string, unknown>[];
    images.push({ ...images[0]!, result_id: 'other' });
    const levelled = validDocument();
    levelled.squashfs = { compressor: 'xz', level: 3 };

    // Act
    const first = runDocumentSchema.safeParse(duplicate);
    const second = runDocumentSchema.safeParse(levelled);

    // Assert
    expect(first.success ? [] : first.error.issues.map((i) => i.message)).toContain('image ids must be unique');
    expect(second.success ? [] : second.error.issues.map((i) => i.message)).toContain('mksquashfs takes no compression level for xz');
  });
});

describe('layerLogKey', () => {
  it('puts the index first and keeps the name key-safe', () => {
    // Arrange
    const layer = { index: 3, name: 'cos config/ncn (v2)' };

    // Act
    const key = layerLogKey('sessions/s/logs/', layer);

    // Assert
    expect(key).toBe('sessions/s/logs/3-cos_config_ncn__v2_.log');
  });
});
