/**
 * The image registry's domain: IMS v3 image records, their IMS manifests, and the rules around
 * them (readiness, the `Image Registered` event, the delete rule). The API, the CLI's server
 * side and the workflow steps use these; none of them touch the registry or the store directly
 * for these rules.
 */
export { artifactDownloadUrl, artifactUploadUrl, type DownloadUrl, type UploadUrl } from './artifact-urls.ts';
export { createImage } from './create-image.ts';
export { deleteImage } from './delete-image.ts';
export { bucketOf, type ImageDeps } from './image-deps.ts';
export { imageRegisteredEvent, updateImageAndAnnounce } from './image-events.ts';
export {
  ARTIFACT_TYPES,
  DEFAULT_IMAGE_BUCKET,
  artifactKey,
  findArtifact,
  isImageReady,
  keyForLink,
  linkForKey,
  manifestKey,
  readManifest,
} from './manifest.ts';
export { patchImage } from './patch-image.ts';
export { prepareResultImage, revealResultImages } from './result-images.ts';
export { getImage, getImageManifest, listImages } from './read-images.ts';
export { registerManifest, registerUploadedArtifacts, type ArtifactToRegister } from './register-manifest.ts';
export { ARTIFACT_NAMES, IMAGE_ARCHES, type ArtifactName } from './schemas.ts';
export { measureStoredObject, verifyStoredArtifact, type ExpectedChecksums } from './verify-artifact.ts';
export { IMAGE_LIST_PARAMS, imageListParamsSchema, type ImageListParams } from './list-params.ts';
export { listImagePage, MAX_LIST_RESPONSE_BYTES, type ImageListPage } from './read-images.ts';
export { ensureReferenceIndex, referencedKeys } from './reference-index.ts';
