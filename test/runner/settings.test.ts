import { describe, expect, it } from 'vitest';
import { RUNNER_ENV, runnerSettings } from '../../functions/runner/settings.ts';

describe('runnerSettings', () => {
  it('takes flags over the environment', () => {
    // Arrange
    const env = { [RUNNER_ENV.RUN_DOCUMENT_KEY]: 'sessions/env/run-document.json', [RUNNER_ENV.RUNNER_WORKSPACE]: '/env/ws' };

    // Act
    const settings = runnerSettings(['--document-key', 'sessions/flag/run-document.json', '--store-dir', '/data/artifacts'], env);

    // Assert
    expect(settings).toEqual({
      documentKey: 'sessions/flag/run-document.json',
      workspace: '/env/ws',
      storeDir: '/data/artifacts',
      sandbox: 'namespace',
      network: 'egress',
      echoLayerOutput: false,
    });
  });

  it('reads the ECS task settings from the environment, with S3 when no store directory is set', () => {
    // Arrange
    const env = {
      [RUNNER_ENV.RUN_DOCUMENT_KEY]: 'sessions/s/run-document.json',
      [RUNNER_ENV.RUNNER_WORKSPACE]: '/scratch/ws',
      [RUNNER_ENV.RUNNER_SANDBOX]: 'container',
      [RUNNER_ENV.RUNNER_NETWORK]: 'none',
      [RUNNER_ENV.RUNNER_ECHO_LAYER_OUTPUT]: 'true',
      [RUNNER_ENV.ARTIFACT_S3_ENDPOINT]: 'http://127.0.0.1:9000',
      [RUNNER_ENV.ARTIFACT_BUCKET]: 'cfs-artifacts-123',
    };

    // Act
    const settings = runnerSettings([], env);

    // Assert
    expect(settings).toEqual({
      documentKey: 'sessions/s/run-document.json',
      workspace: '/scratch/ws',
      s3Endpoint: 'http://127.0.0.1:9000',
      s3Bucket: 'cfs-artifacts-123',
      sandbox: 'container',
      network: 'none',
      echoLayerOutput: true,
    });
  });

  it('refuses a missing document key, a relative workspace, unknown flags and a network other than egress or none as bad input', () => {
    // Arrange
    const cases: string[][] = [['--workspace', '/ws'], ['--document-key', 'k', '--workspace', 'ws'], ['--document-key', 'k', '--workspace', '/ws', '--verbose'], ['--document-key', 'k', '--workspace', '/ws', '--network', 'host']];

    // Act
    const failures = cases.map((argv) => {
      try {
        runnerSettings(argv, {});
        return undefined;
      } catch (error) {
        return (error as { kind: string }).kind;
      }
    });

    // Assert
    expect(failures).toEqual(['input', 'input', 'input', 'input']);
  });
});
