import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { missingBundles } from './bundles.ts';
import { stackSettingsFromContext } from './settings.ts';
import { CfsStack } from './stacks/cfs-stack.ts';

// The CDK app (`npx cdk synth|deploy`; cdk.json builds the bundles first). Environment-agnostic:
// synth needs no credentials and no network; the account and region come from the deploying
// credentials.
const missing = missingBundles();
if (missing.length > 0) throw new Error(`missing bundles (${missing.join(', ')}): run \`npm run build\` first`);

const app = new App();
new CfsStack(app, 'CfsImageCustomization', {
  description: 'CFS image customization sessions: API Gateway, Lambda steps, Step Functions, the ECS runner, DynamoDB, S3',
  settings: stackSettingsFromContext(app.node),
});
// Every AwsSolutions finding fails the synth unless acknowledged with a reason next to its resource.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
app.synth();
