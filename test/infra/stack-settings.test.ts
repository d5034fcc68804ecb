import { App } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { parseStackSettings, stackSettingsFromContext } from '../../lib/settings.ts';

describe('the deployment settings (CDK context)', () => {
  it('takes `cfs:*` context values as the CLI passes them (strings) and fills the defaults', () => {
    // Arrange
    const app = new App({ context: { 'cfs:runnerCapacity': 'ec2', 'cfs:runnerEphemeralStorageGiB': '150', 'cfs:apiRateLimit': '5' } });
    // Act
    const settings = stackSettingsFromContext(app.node);
    // Assert
    expect(settings).toMatchObject({ runnerCapacity: 'ec2', runnerEphemeralStorageGiB: 150, apiRateLimit: 5, runnerEgress: 'nat', runnerArchitecture: 'x86_64', cloneUrlSchemes: 'https' });
  });

  it('refuses a Fargate size Fargate does not offer, naming the setting', () => {
    // Act
    const parsing = () => parseStackSettings({ runnerCpu: 4096, runnerMemoryMiB: 4096 });
    // Assert
    expect(parsing).toThrow(/cfs:runnerMemoryMiB: with 4096 CPU units Fargate takes 8192 to 30720 MiB/);
  });

  it('refuses ephemeral storage beyond Fargate\'s 200 GiB and a runner budget beyond the state\'s outer bound', () => {
    // Act
    const tooLarge = () => parseStackSettings({ runnerEphemeralStorageGiB: '500' });
    const tooLong = () => parseStackSettings({ runnerTimeoutSeconds: '90000' });
    // Assert
    expect(tooLarge).toThrow(/cfs:runnerEphemeralStorageGiB/);
    expect(tooLong).toThrow(/cfs:runnerTimeoutSeconds/);
  });

  it('accepts only https and ssh clone URL schemes', () => {
    // Act
    const parsing = () => parseStackSettings({ cloneUrlSchemes: 'https,file' });
    // Assert
    expect(parsing).toThrow(/cfs:cloneUrlSchemes/);
  });

  it('takes an SNS topic ARN for the alarms and a 5xx ratio between 0 and 1, and refuses anything else', () => {
    // Act
    const settings = parseStackSettings({ alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:ops-alarms', api5xxRatio: '0.1' });
    const notATopic = () => parseStackSettings({ alarmTopicArn: 'arn:aws:sqs:eu-west-1:123456789012:queue' });
    const notARatio = () => parseStackSettings({ api5xxRatio: '5' });
    // Assert
    expect(settings).toMatchObject({ alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:ops-alarms', api5xxRatio: 0.1 });
    expect(parseStackSettings({}).api5xxRatio).toBe(0.05);
    expect(notATopic).toThrow(/cfs:alarmTopicArn: must be an SNS topic ARN/);
    expect(notARatio).toThrow(/cfs:api5xxRatio/);
  });
});
