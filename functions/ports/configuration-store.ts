import type { ConfigurationRecord } from '../core/model/configuration.ts';

/** Where configurations live (same table as sessions). */
export interface ConfigurationStore {
  /** Creates or replaces. */
  put(configuration: ConfigurationRecord): Promise<void>;
  get(name: string): Promise<ConfigurationRecord | undefined>;
  list(): Promise<ConfigurationRecord[]>;
  delete(name: string): Promise<boolean>;
}
