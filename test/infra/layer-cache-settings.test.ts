import { afterAll, describe, expect, it } from 'vitest';
import { AWS_ENV } from '../../functions/adapters/aws/environment.ts';
import { parseAwsSettings } from '../../functions/adapters/aws/settings.ts';
import { optionDefaultsFrom } from '../../functions/core/options/workflow-settings.ts';
import { parseStackSettings } from '../../lib/settings.ts';
import { synthesizeStack } from './stack-fixture.ts';

const synthesized = synthesizeStack({ 'cfs:layerCacheMaxBytes': String(50 * 1024 ** 3) });
afterAll(() => synthesized.dispose());

type FunctionResource = { Properties: { Handler?: string; Environment?: { Variables?: Record<string, unknown> } } };

describe("the layer cache's size cap in AWS (issue 19)", () => {
  it('gives every function that reads the settings (those told the table) the CDK setting layerCacheMaxBytes as LAYER_CACHE_MAX_BYTES', () => {
    // Arrange
    const functions = Object.entries(synthesized.template.findResources('AWS::Lambda::Function') as Record<string, FunctionResource>);
    // Act
    const withTable = functions.filter(([, f]) => f.Properties.Environment?.Variables?.[AWS_ENV.TABLE_NAME] !== undefined);
    // Assert
    expect(withTable.length).toBeGreaterThanOrEqual(10);
    for (const [id, f] of withTable) expect(f.Properties.Environment!.Variables![AWS_ENV.LAYER_CACHE_MAX_BYTES], id).toBe(String(50 * 1024 ** 3));
  });

  it('defaults layerCacheMaxBytes to 100 GiB and refuses a negative one', () => {
    // Act
    const defaults = parseStackSettings({});
    const negative = () => parseStackSettings({ layerCacheMaxBytes: '-1' });
    // Assert
    expect(defaults.layerCacheMaxBytes).toBe(107_374_182_400);
    expect(negative).toThrow(/layerCacheMaxBytes/);
  });

  it('reads LAYER_CACHE_MAX_BYTES as the default of the setting layer_cache_max_bytes, null without it', () => {
    // Act
    const set = parseAwsSettings({ [AWS_ENV.LAYER_CACHE_MAX_BYTES]: '107374182400' });
    const unset = parseAwsSettings({});
    // Assert
    expect(set.workflow.layerCache).toEqual({ enabled: true, maxAgeSeconds: 604_800, maxBytes: 107_374_182_400 });
    expect(optionDefaultsFrom(set.workflow).layer_cache_max_bytes).toBe(107_374_182_400);
    expect(unset.workflow.layerCache?.maxBytes).toBeNull();
    expect(() => parseAwsSettings({ [AWS_ENV.LAYER_CACHE_MAX_BYTES]: 'lots' })).toThrow(/LAYER_CACHE_MAX_BYTES/);
  });
});
