import type { ConfigurationRecord } from '../core/model/configuration.ts';

/** Where configurations live (same table as sessions). */
export interface ConfigurationStore {
  /** Creates or replaces. */
  put(configuration: ConfigurationRecord): Promise<void>;
  get(name: string): Promise<ConfigurationRecord | undefined>;
  list(): Promise<ConfigurationRecord[]>;
  /** At most `limit` configurations after the name `after`, in name order, and the name to continue after when more follow. */
  page(limit: number, after?: string): Promise<{ configurations: ConfigurationRecord[]; next?: string }>;
  delete(name: string): Promise<boolean>;
}
