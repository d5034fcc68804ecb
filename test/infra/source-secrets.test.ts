import { afterAll, describe, expect, it } from 'vitest';
import { AWS_ENV } from '../../functions/adapters/aws/environment.ts';
import { RUNNER_ENV } from '../../functions/runner/settings.ts';
import { actionsOf, logicalId, policyStatements, resourcesOf, synthesizeStack } from './stack-fixture.ts';

const synthesized = synthesizeStack();
const { template } = synthesized;
afterAll(() => synthesized.dispose());

const SOURCE_SECRET_ACTIONS = ['secretsmanager:CreateSecret', 'secretsmanager:PutSecretValue', 'secretsmanager:GetSecretValue', 'secretsmanager:DeleteSecret'];

describe("CFS sources' secrets in the CDK stack", () => {
  it("tells the API the sources' secret prefix, which is the stack's own", () => {
    // Arrange
    const api = template.toJSON().Resources[logicalId(template, 'AWS::Lambda::Function', /^ApiFunction(Function)?[0-9A-F]{8}$/)] as { Properties: { Environment: { Variables: Record<string, unknown> } } };
    // Act
    const prefix = api.Properties.Environment.Variables[AWS_ENV.SOURCE_SECRET_PREFIX];
    // Assert
    expect(JSON.stringify(prefix)).toMatch(/^"cfs\/.+\/sources\/"$|"cfs\/",\{"Ref":"AWS::StackName"\},"\/sources\/"/);
  });

  it('grants the API the four secret calls and the SourceReader role only GetSecretValue, on secrets under that prefix only, and no other role any of them there', () => {
    // Arrange
    const apiRole = logicalId(template, 'AWS::IAM::Role', 'ApiFunctionRole');
    const readerRole = logicalId(template, 'AWS::IAM::Role', 'SourceReaderRole');
    const touching = policyStatements(template).filter((p) => actionsOf(p.statement).some((a) => SOURCE_SECRET_ACTIONS.includes(a)) && JSON.stringify(resourcesOf(p.statement)).includes('/sources/'));
    // Act
    const byRole = Object.fromEntries(touching.map((p) => [(p.roles as { Ref: string }[]).map((r) => r.Ref).join(','), p.statement]));
    // Assert
    expect(Object.keys(byRole).sort()).toEqual([apiRole, readerRole].sort());
    expect(actionsOf(byRole[apiRole]!).sort()).toEqual([...SOURCE_SECRET_ACTIONS].sort());
    expect(actionsOf(byRole[readerRole]!)).toEqual(['secretsmanager:GetSecretValue']);
    for (const statement of Object.values(byRole)) expect(JSON.stringify(resourcesOf(statement))).toMatch(/:secret:cfs\/.*\/sources\/\*"/);
  });

  it('lets only the RenderInventory function\'s role, in this account, assume the SourceReader role, and that role nothing but the sources\' secrets', () => {
    // Arrange
    const readerRole = logicalId(template, 'AWS::IAM::Role', 'SourceReaderRole');
    const renderRole = logicalId(template, 'AWS::IAM::Role', /^Stepsrenderinventory.*Role/);
    const trust = (template.toJSON().Resources[readerRole] as { Properties: { AssumeRolePolicyDocument: { Statement: Record<string, unknown>[] }; ManagedPolicyArns?: unknown } }).Properties;
    // Act
    const statements = trust.AssumeRolePolicyDocument.Statement;
    const readerStatements = policyStatements(template).filter((p) => JSON.stringify(p.roles).includes(`"${readerRole}"`));
    // Assert
    expect(statements).toHaveLength(1);
    expect(statements[0]!.Action).toBe('sts:AssumeRole');
    expect(statements[0]!.Principal).toEqual({ AWS: { 'Fn::GetAtt': [renderRole, 'Arn'] } });
    expect(statements[0]!.Condition).toEqual({ StringEquals: { 'aws:PrincipalAccount': { Ref: 'AWS::AccountId' } } });
    expect(trust.ManagedPolicyArns).toBeUndefined();
    expect(readerStatements.flatMap((p) => actionsOf(p.statement))).toEqual(['secretsmanager:GetSecretValue']);
  });

  it('grants sts:AssumeRole on the SourceReader role to RenderInventory alone, and tells it the role and the secrets\' ARN prefix', () => {
    // Arrange
    const readerRole = logicalId(template, 'AWS::IAM::Role', 'SourceReaderRole');
    const renderRole = logicalId(template, 'AWS::IAM::Role', /^Stepsrenderinventory.*Role/);
    const render = template.toJSON().Resources[logicalId(template, 'AWS::Lambda::Function', /^Stepsrenderinventory/)] as { Properties: { Environment: { Variables: Record<string, unknown> } } };
    // Act
    const assuming = policyStatements(template).filter((p) => actionsOf(p.statement).some((a) => a.startsWith('sts:')));
    const variables = render.Properties.Environment.Variables;
    // Assert
    expect(assuming.map((p) => p.roles)).toEqual([[{ Ref: renderRole }]]);
    expect(actionsOf(assuming[0]!.statement)).toEqual(['sts:AssumeRole']);
    expect(resourcesOf(assuming[0]!.statement)).toEqual([{ 'Fn::GetAtt': [readerRole, 'Arn'] }]);
    expect(variables[AWS_ENV.SOURCE_READER_ROLE_ARN]).toEqual({ 'Fn::GetAtt': [readerRole, 'Arn'] });
    expect(JSON.stringify(variables[AWS_ENV.SOURCE_SECRET_ARN_PREFIX])).toMatch(/:secret:cfs\/.*\/sources\/"\]\]\}$/);
  });

  it('gives the runner task role no Secrets Manager access, no STS access, and no way to read the deleted access object back', () => {
    // Arrange
    const taskRoles = Object.keys(template.findResources('AWS::IAM::Role')).filter((id) => /Runner.*TaskRole/.test(id));
    // Act
    const statements = policyStatements(template).filter((p) => taskRoles.some((r) => JSON.stringify(p.roles).includes(`"${r}"`)));
    // A noncurrent version (what the versioned bucket keeps after the runner deletes source-access.json) needs s3:GetObjectVersion.
    const forbidden = statements.filter((p) => actionsOf(p.statement).some((a) => a.startsWith('secretsmanager:') || a.startsWith('sts:') || a === 's3:GetObjectVersion' || a === 's3:*'));
    // Assert
    expect(taskRoles.length).toBeGreaterThan(0);
    expect(statements.length).toBeGreaterThan(0);
    expect(forbidden).toEqual([]);
  });

  it("tells the runner the sources' secret name prefix, a name and no secret", () => {
    // Arrange
    const taskDefinition = Object.values(template.findResources('AWS::ECS::TaskDefinition'))[0] as { Properties: { ContainerDefinitions: { Environment: { Name: string; Value: unknown }[] }[] } };
    // Act
    const variable = taskDefinition.Properties.ContainerDefinitions[0]!.Environment.find((e) => e.Name === RUNNER_ENV.RUNNER_SOURCE_SECRET_PREFIX);
    // Assert
    expect(JSON.stringify(variable?.Value)).toMatch(/^"cfs\/.+\/sources\/"$|"cfs\/",\{"Ref":"AWS::StackName"\},"\/sources\/"/);
  });

  it('acknowledges no new cdk-nag finding', () => {
    // Act
    const findings = synthesized.nagViolations().filter((v) => v.resources.some((r) => r.includes('SourceReader') || r.includes('render-inventory')));
    // Assert
    expect(findings).toEqual([]);
  });
});
