import type { ProductOptions, StoredOptions } from '../core/options/options-schemas.ts';

/**
 * The CFS options (`/apis/cfs/v{2,3}/options`) and this product's settings
 * (`/apis/cfs-image/v1/settings`): one flat record in the table (v3 names), read by the API
 * (page sizes) and by the workflow's steps at run time (image waits, compression, clone URL
 * schemes, session TTL, debug wait), so a PATCH takes effect for the next step that runs.
 */
export interface OptionsStore {
  /**
   * What each acting option or setting is while never set: the deployment's own settings (the embedded
   * runtime's workflow settings, or the AWS function's environment). `clone_url_schemes` is
   * also the most the option may allow.
   */
  readonly defaults: ProductOptions;
  /** The options set so far, without defaults. */
  get(): Promise<StoredOptions>;
  /** Read-modify-write with optimistic locking (retried when another writer got there first). */
  update(change: (current: StoredOptions) => StoredOptions): Promise<StoredOptions>;
}
