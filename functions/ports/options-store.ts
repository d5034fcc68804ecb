import type { ProductOptions, StoredOptions } from '../core/options/options-schemas.ts';

/**
 * The service options (`/apis/cfs/v{2,3}/options`): one record in the table, read by the API
 * (page sizes) and by the workflow's steps at run time (image waits, compression, clone URL
 * schemes), so a PATCH takes effect for the next step that runs.
 */
export interface OptionsStore {
  /**
   * What each product option is while never set: the deployment's own settings (the embedded
   * runtime's workflow settings, or the AWS function's environment). `clone_url_schemes` is
   * also the most the option may allow.
   */
  readonly defaults: ProductOptions;
  /** The options set so far, without defaults. */
  get(): Promise<StoredOptions>;
  /** Read-modify-write with optimistic locking (retried when another writer got there first). */
  update(change: (current: StoredOptions) => StoredOptions): Promise<StoredOptions>;
}
