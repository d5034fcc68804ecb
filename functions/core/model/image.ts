/** IMS v3 image records and the IMS artifact manifest. */

export type ImageArch = 'x86_64' | 'aarch64';

export interface ImageLink {
  path: string;
  etag?: string;
  type: string;
}

export interface ImageRecord {
  id: string;
  name: string;
  created: string;
  arch: ImageArch;
  link?: ImageLink | null;
  metadata?: Record<string, string>;
  /**
   * Not an IMS field (the API leaves it out): when the image first had a rootfs in its
   * manifest. Set once and never cleared; `Image Registered` is published exactly when it is set.
   */
  rootfs_registered?: string;
  /**
   * Not an IMS field: a session's result, prepared but not yet shown. The registry hides the
   * record (no list, get or source use) until the session completes and clears this.
   */
  pending_session?: string;
  /**
   * Not an IMS field: the store keys the image holds on (its manifest and the artifacts the
   * manifest listed when the link was set), as written to the artifact reference index; what
   * its delete releases. Absent on records stored before the index (indexed once, see
   * core/images/reference-index.ts).
   */
  artifact_keys?: string[];
}

export const ROOTFS_TYPE = 'application/vnd.cray.image.rootfs.squashfs';
export const KERNEL_TYPE = 'application/vnd.cray.image.kernel';
export const INITRD_TYPE = 'application/vnd.cray.image.initrd';
export const BOOT_PARAMETERS_TYPE = 'application/vnd.cray.image.parameters.boot';

export interface ManifestArtifact {
  link: ImageLink;
  type: string;
  md5: string;
  sha256: string;
  size: number;
}

/** `<bucket>/<image id>/manifest.json`, as IMS writes it, plus sha256 and size per artifact. */
export interface ImageManifest {
  version: '1.0';
  created: string;
  artifacts: ManifestArtifact[];
}
