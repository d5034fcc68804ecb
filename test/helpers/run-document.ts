import type { runnerKeys } from '../../functions/core/workflow/session-keys.ts';

/**
 * A control-plane run document (as RenderInventory leaves it) for `session`: one image, one layer
 * named `layer`, and the runner's keys under `runner`.
 */
export function runDocumentFor(session: string, runner: ReturnType<typeof runnerKeys>, { image = '11111111-1111-4111-8111-111111111111', layer = 'base' } = {}) {
  return {
    session,
    images: [{ image_id: image, source_name: 'a', arch: 'x86_64', rootfs: { key: `boot-images/${image}/rootfs`, size: 1, sha256: 'c'.repeat(64) }, result_name: 'r', result_id: 'r1', upload_prefix: runner.resultPrefix('r1') }],
    inventory: { all: { children: {} } },
    layers: [{ index: 0, name: layer, clone_url: 'file:///repo', commit: 'a'.repeat(40), playbook: 'a.yml' }],
    ansible: { limit: image, verbosity: 0, passthrough: [] },
    squashfs: { compressor: 'source' },
    allowed_schemes: ['file'],
    outcome_key: runner.outcome,
    logs_prefix: runner.logsPrefix,
  };
}
