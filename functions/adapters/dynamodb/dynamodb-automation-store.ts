import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AutomationRecord } from '../../core/automations/automation-record.ts';
import type { AutomationStore } from '../../ports/automation-store.ts';
import { RecordTable, type RecordTableOptions } from './record-table.ts';

/** Automations (with their history and last build) on the single table (AWS DynamoDB or dynalite). */
export class DynamoDbAutomationStore implements AutomationStore {
  private readonly table: RecordTable<AutomationRecord>;

  constructor(client: DynamoDBDocumentClient, tableName: string, options: RecordTableOptions = {}) {
    this.table = new RecordTable(client, tableName, 'AUTOMATION', (a) => a.name, 'automation', undefined, options);
  }

  create(automation: AutomationRecord) {
    return this.table.create(automation);
  }
  get(name: string) {
    return this.table.get(name);
  }
  list() {
    return this.table.list();
  }
  update(name: string, change: (current: AutomationRecord) => AutomationRecord) {
    return this.table.update(name, change);
  }
  delete(name: string) {
    return this.table.delete(name);
  }
}
