import {
  CreateSecretCommand,
  DeleteSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import type { SourceSecret } from '../../core/sources/source-record.ts';
import type { SourceSecretStore } from '../../ports/source-store.ts';
import { SOURCE_SECRET_NAME } from '../../core/sources/source-schemas.ts';


const isNamed = (error: unknown, name: string) => (error as { name?: string }).name === name;

/**
 * Sources' git logins in AWS: one Secrets Manager secret per source, named `<prefix><secret
 * name>`. The prefix is the stack's own (lib/ grants the API exactly these calls on
 * `secret:<prefix>*`), so a restore can only name a secret of this deployment. Deleting removes
 * the secret at once (no recovery window): CFS deletes a source's secret with the source.
 */
export class SecretsManagerSourceSecretStore implements SourceSecretStore {
  constructor(
    private readonly client: SecretsManagerClient,
    private readonly prefix: string,
  ) {}

  nameProblem(secretName: string): string | undefined {
    return SOURCE_SECRET_NAME.test(secretName) ? undefined : `must be 1 to 128 letters, digits, - or _ (a secret under this deployment's prefix ${this.prefix})`;
  }

  private id(secretName: string): string {
    const problem = this.nameProblem(secretName);
    if (problem) throw new Error(`secret name '${secretName}' ${problem}`);
    return `${this.prefix}${secretName}`;
  }

  async put(secretName: string, secret: SourceSecret): Promise<void> {
    const id = this.id(secretName);
    const value = JSON.stringify({ username: secret.username, password: secret.password });
    try {
      await this.client.send(new CreateSecretCommand({ Name: id, SecretString: value, Description: 'CFS source git login (cfs sources)' }));
    } catch (error) {
      if (!isNamed(error, 'ResourceExistsException')) throw error;
      await this.client.send(new PutSecretValueCommand({ SecretId: id, SecretString: value }));
    }
  }

  async get(secretName: string): Promise<SourceSecret | undefined> {
    let text: string | undefined;
    try {
      text = (await this.client.send(new GetSecretValueCommand({ SecretId: this.id(secretName) }))).SecretString;
    } catch (error) {
      if (isNamed(error, 'ResourceNotFoundException')) return undefined;
      throw error;
    }
    const value = JSON.parse(text ?? '{}') as Partial<SourceSecret>;
    if (typeof value.username !== 'string' || typeof value.password !== 'string') throw new Error(`secret '${secretName}' is not a username and password`);
    return { username: value.username, password: value.password };
  }

  async delete(secretName: string): Promise<void> {
    try {
      await this.client.send(new DeleteSecretCommand({ SecretId: this.id(secretName), ForceDeleteWithoutRecovery: true }));
    } catch (error) {
      if (!isNamed(error, 'ResourceNotFoundException')) throw error;
    }
  }
}
