import packageJson from '../../../package.json' with { type: 'json' };

/**
 * CFS's `Version` answer (`GET /apis/cfs/`, `/versions`, `/v2`, `/v3`): this product's release
 * as `major`, `minor`, `patch` strings, taken from package.json. They count releases of this
 * product, not of HPE's CFS, so a client must not infer CFS features from them; what this
 * product serves is in its own `/apis/cfs/openapi.json`.
 */
export interface ServiceVersion {
  major: string;
  minor: string;
  patch: string;
}

/** The parts of a `major.minor.patch[-pre][+build]` version; anything else is a packaging mistake, thrown at load. */
export function parseServiceVersion(version: string): ServiceVersion {
  const match = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:[-+].*)?$/.exec(version);
  if (!match) throw new Error(`package.json version '${version}' is not major.minor.patch`);
  return { major: match[1]!, minor: match[2]!, patch: match[3]! };
}

/** The running product's version (package.json), parsed once. */
export const SERVICE_VERSION: ServiceVersion = parseServiceVersion(packageJson.version);

/** IMS's `GET /version` answer: a string, the same release as `major.minor.patch`. */
export const SERVICE_VERSION_STRING = `${SERVICE_VERSION.major}.${SERVICE_VERSION.minor}.${SERVICE_VERSION.patch}`;
