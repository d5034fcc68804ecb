/** The stored shape of a configuration, CFS v3 field names (v2 is converted at the API edge). */

export interface ConfigurationLayer {
  name?: string;
  /** With `source`: that source's clone URL when the layer was last stored (the session pins the source's current one). */
  clone_url: string;
  /** A CFS v3 source (`/v3/sources`) whose clone URL and credentials the layer uses. */
  source?: string;
  playbook: string;
  /** Always set once stored: a given branch is resolved to a commit with git. */
  commit: string;
  branch?: string;
  special_parameters?: { ims_require_dkms?: boolean };
}

export interface ConfigurationRecord {
  name: string;
  description?: string;
  last_updated: string;
  layers: ConfigurationLayer[];
  additional_inventory?: { name?: string; clone_url: string; source?: string; commit: string; branch?: string };
}
