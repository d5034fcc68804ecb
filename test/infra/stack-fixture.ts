import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cdkJsonContext } from '../../lib/cdk-context.ts';
import { stackSettingsFromContext } from '../../lib/settings.ts';
import { CfsStack } from '../../lib/stacks/cfs-stack.ts';
import { ensureLambdaBundles } from './lambda-bundles.ts';

export interface SynthesizedStack {
  stack: CfsStack;
  template: Template;
  /** The AwsSolutions findings nobody acknowledged. */
  nagViolations(): { ruleName: string; resources: string[] }[];
  dispose(): void;
}

/**
 * Builds and synthesizes the stack in-process the way `cdk synth` does (cdk.json's context and
 * feature flags, plus `cfs:*` overrides), into a temp directory removed by `dispose`. Synthesis
 * stages every asset, so a test file does it once, at module level.
 */
export function synthesizeStack(overrides: Record<string, string> = {}): SynthesizedStack {
  ensureLambdaBundles();
  const outdir = mkdtempSync(join(tmpdir(), 'cfs-cdk-'));
  const app = new App({ outdir, context: cdkJsonContext(overrides) });
  const stack = new CfsStack(app, 'CfsTest', { settings: stackSettingsFromContext(app.node) });
  const template = Template.fromStack(stack);
  return {
    stack,
    template,
    nagViolations: () =>
      new AwsSolutionsChecks(app).validateScope(stack).violations.map((v) => ({ ruleName: v.ruleName, resources: v.violatingResources.map((r) => r.constructPath ?? '?') })),
    dispose: () => rmSync(outdir, { recursive: true, force: true }),
  };
}

/** Every IAM policy statement of the template, with the logical ID of the policy holding it. */
export function policyStatements(template: Template): { policy: string; roles: unknown; statement: Record<string, unknown> }[] {
  return Object.entries(template.findResources('AWS::IAM::Policy')).flatMap(([policy, resource]) => {
    const properties = (resource as { Properties: { PolicyDocument: { Statement: Record<string, unknown>[] }; Roles?: unknown } }).Properties;
    return properties.PolicyDocument.Statement.map((statement) => ({ policy, roles: properties.Roles, statement }));
  });
}

/** A statement's actions as a list. */
export function actionsOf(statement: Record<string, unknown>): string[] {
  const action = statement.Action as string | string[];
  return Array.isArray(action) ? action : [action];
}

/** A statement's resources as a list. */
export function resourcesOf(statement: Record<string, unknown>): unknown[] {
  const resource = statement.Resource;
  return Array.isArray(resource) ? resource : [resource];
}

/** The logical ID of the one resource of `type` whose logical ID starts with `prefix` (or matches it). */
export function logicalId(template: Template, type: string, prefix: string | RegExp): string {
  const ids = Object.keys(template.findResources(type)).filter((id) => (typeof prefix === 'string' ? id.startsWith(prefix) : prefix.test(id)));
  if (ids.length !== 1) throw new Error(`expected one ${type} named ${prefix}*, found ${ids.join(', ') || 'none'}`);
  return ids[0]!;
}
