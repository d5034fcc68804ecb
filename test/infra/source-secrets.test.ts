import { afterAll, describe, expect, it } from 'vitest';
import { AWS_ENV } from '../../functions/adapters/aws/environment.ts';
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

  it('grants the API exactly the four secret calls, on secrets under that prefix only, and no other role any of them there', () => {
    // Arrange
    const apiRole = logicalId(template, 'AWS::IAM::Role', 'ApiFunctionRole');
    const touching = policyStatements(template).filter((p) => actionsOf(p.statement).some((a) => SOURCE_SECRET_ACTIONS.includes(a)) && JSON.stringify(resourcesOf(p.statement)).includes('/sources/'));
    // Act
    const roles = touching.flatMap((p) => (p.roles as unknown[]).map((r) => JSON.stringify(r)));
    // Assert
    expect(touching).toHaveLength(1);
    expect(roles).toEqual([JSON.stringify({ Ref: apiRole })]);
    expect(actionsOf(touching[0]!.statement).sort()).toEqual([...SOURCE_SECRET_ACTIONS].sort());
    expect(JSON.stringify(resourcesOf(touching[0]!.statement))).toMatch(/:secret:cfs\/.*\/sources\/\*"/);
  });

  it('gives the runner task role no Secrets Manager access at all', () => {
    // Arrange
    const taskRoles = Object.keys(template.findResources('AWS::IAM::Role')).filter((id) => /Runner.*TaskRole/.test(id));
    // Act
    const secretStatements = policyStatements(template).filter((p) => taskRoles.some((r) => JSON.stringify(p.roles).includes(`"${r}"`)) && actionsOf(p.statement).some((a) => a.startsWith('secretsmanager:')));
    // Assert
    expect(taskRoles.length).toBeGreaterThan(0);
    expect(secretStatements).toEqual([]);
  });
});
