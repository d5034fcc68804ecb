import { z } from 'zod';
import { v2ConfigurationSchema as v2ConfigurationRequestSchema, v3ConfigurationSchema as v3ConfigurationRequestSchema } from '../core/configurations/configuration-schemas.ts';
import { automationNameSchema, automationSpecSchema } from '../core/automations/automation-schemas.ts';
import { sourceCollectionSchema, sourceCreateSchema, sourceListParamsSchema, sourceNameSchema, sourceRestoreSchema, sourceUpdateSchema, sourceViewSchema } from '../core/sources/source-schemas.ts';
import { imageListParamsSchema } from '../core/images/list-params.ts';
import { ARTIFACT_NAMES, artifactUrlRequestSchema, imageCreateSchema, imagePatchSchema, manifestRegistrationSchema } from '../core/images/schemas.ts';
import { layerChangesSchema } from '../core/layer-cache/entry.ts';
import { multipartCompleteSchema, multipartPartUrlsSchema, multipartResponseSchemas, multipartStartSchema } from '../core/images/multipart.ts';
import {
  PRODUCT_SETTINGS_PATH,
  productSettingsSchema,
  settingsPatchSchema,
  v2OptionsPatchSchema,
  v2OptionsSchema,
  v3OptionsPatchSchema,
  v3OptionsSchema,
} from '../core/options/options-schemas.ts';
import {
  configurationPutParamsSchema,
  v2ConfigurationListParamsSchema,
  v2SessionDeleteParamsSchema,
  v2SessionListParamsSchema,
  v3ConfigurationListParamsSchema,
  v3SessionDeleteParamsSchema,
  v3SessionListParamsSchema,
} from '../core/sessions/query-params.ts';
import { configurationNameSchema, sessionNameSchema, v2SessionCreateSchema, v3SessionCreateSchema } from '../core/sessions/session-schemas.ts';
import {
  automationCollectionSchema,
  automationPlanNowSchema,
  automationRunSchema,
  automationSchema,
  downloadUrlSchema,
  healthzSchema,
  imageManifestSchema,
  imageViewSchema,
  imsHealthSchema,
  problemSchema,
  sessionLogChunkSchema,
  sessionPlanSchema,
  storedObjectSchema,
  uploadUrlSchema,
  v2ConfigurationSchema,
  v2SessionSchema,
  v3ConfigurationCollectionSchema,
  v3ConfigurationSchema,
  v3SessionCollectionSchema,
  v3SessionIdCollectionSchema,
  v3SessionSchema,
  versionSchema,
} from './openapi-schemas.ts';

/**
 * The API's own OpenAPI 3.0 document (`GET /apis/cfs/openapi.json`), generated from the zod
 * schemas that validate the requests (the core's) and type the responses (openapi-schemas.ts),
 * so it cannot drift from what the routes accept and answer. `OPERATIONS` lists every route
 * the app serves; a test checks it against the app's routing table both ways.
 */

export const OPENAPI_PATH = '/apis/cfs/openapi.json';

/** Request bodies, described as clients send them (defaults not yet applied). */
const REQUEST_SCHEMAS = {
  V3SessionCreate: v3SessionCreateSchema,
  V2SessionCreate: v2SessionCreateSchema,
  V3ConfigurationUpdate: v3ConfigurationRequestSchema,
  V2ConfigurationUpdate: v2ConfigurationRequestSchema,
  V3OptionsUpdate: v3OptionsPatchSchema,
  V2OptionsUpdate: v2OptionsPatchSchema,
  ProductSettingsUpdate: settingsPatchSchema,
  ImageCreateRecord: imageCreateSchema,
  ImagePatchRecord: imagePatchSchema,
  ManifestRegistration: manifestRegistrationSchema,
  ArtifactUrlRequest: artifactUrlRequestSchema,
  MultipartStart: multipartStartSchema,
  MultipartPartUrlsRequest: multipartPartUrlsSchema,
  MultipartComplete: multipartCompleteSchema,
  AutomationSpec: automationSpecSchema,
  V3SourceCreateData: sourceCreateSchema,
  V3SourceUpdateData: sourceUpdateSchema,
  V3SourceRestoreData: sourceRestoreSchema,
} satisfies Record<string, z.ZodType>;

/** Response bodies, as the API writes them. */
const RESPONSE_SCHEMAS = {
  V3SessionData: v3SessionSchema,
  V2Session: v2SessionSchema,
  V3SessionDataCollection: v3SessionCollectionSchema,
  V2SessionArray: z.array(v2SessionSchema),
  V3SessionIdCollection: v3SessionIdCollectionSchema,
  V3ConfigurationData: v3ConfigurationSchema,
  V2Configuration: v2ConfigurationSchema,
  V3ConfigurationDataCollection: v3ConfigurationCollectionSchema,
  V2ConfigurationArray: z.array(v2ConfigurationSchema),
  V3Options: v3OptionsSchema,
  V2Options: v2OptionsSchema,
  ProductSettings: productSettingsSchema,
  ImageRecord: imageViewSchema,
  ImageRecordArray: z.array(imageViewSchema),
  ImageManifest: imageManifestSchema,
  UploadUrl: uploadUrlSchema,
  DownloadUrl: downloadUrlSchema,
  ...multipartResponseSchemas,
  StoredObject: storedObjectSchema,
  ProblemDetails: problemSchema,
  SessionLogChunk: sessionLogChunkSchema,
  LayerChanges: layerChangesSchema.meta({
    description:
      'What one layer changed in one image root (issue 19): each file added, modified or removed (at most 100,000, then files_truncated), and each package whose version changed (old null: installed; new null: removed) where the root has dpkg or rpm (else packages is null).',
  }),
  SessionPlan: sessionPlanSchema,
  Automation: automationSchema,
  AutomationCollection: automationCollectionSchema,
  AutomationPlan: automationPlanNowSchema,
  AutomationRun: automationRunSchema,
  V3SourceData: sourceViewSchema,
  V3SourceDataCollection: sourceCollectionSchema,
  Version: versionSchema,
  Healthz: healthzSchema,
  ImsVersion: z.string().meta({ description: "This product's release (package.json), major.minor.patch." }),
  ImsHealth: imsHealthSchema,
} satisfies Record<string, z.ZodType>;

/** The IMS delete's query: `force=true` deletes an image that pending or running sessions target. */
const imageDeleteParamsSchema = z.strictObject({
  force: z.string().optional().meta({ description: 'true (or 1, yes) deletes the image even when pending or running sessions target it.' }),
});

/** The changes query: which of the session's images (optional when it has one). */
const layerChangesParamsSchema = z.strictObject({
  image_id: z.string().optional().meta({ description: "One of the session's source images; may be left out when the session has one image." }),
});

/**
 * The logs query (parsed in the core's logs reader, logs.ts: these patterns are what it accepts;
 * which layer, test or cursor exists depends on the session).
 */
const sessionLogParamsSchema = z.strictObject({
  cursor: z
    .string()
    .regex(/^(?:t?\d{1,6}:\d{1,15})?$/)
    .optional()
    .meta({ description: "The `cursor` of the previous answer (`LAYER:OFFSET`, or `tTEST:OFFSET` in a test log), within what this request reads; absent or empty: from the start." }),
  layer: z.string().regex(/^\d*$/).optional().meta({ description: "Only this layer: its index, from 0 to the session's last; absent or empty: every layer in order, then every test log." }),
  test: z.string().optional().meta({ description: 'Only this test log, as `tests[].test` names it (`IMAGE_ID/check-NAME` or `IMAGE_ID/boot-console`); not with `layer`.' }),
  max_bytes: z
    .string()
    .regex(/^(?:0*(?:[1-9]\d{0,5}|10[0-3]\d{4}|104[0-7]\d{3}|1048[0-4]\d{2}|10485[0-6]\d|104857[0-6]))?$/)
    .optional()
    .meta({ description: 'At most this many bytes of text, 1 to 1048576 (default 65536).' }),
});

/** A signed artifact URL's query: made by the server, never by hand. */
const artifactUrlParamsSchema = z.strictObject({
  expires: z.string().meta({ description: 'Expiry, epoch seconds (part of the signed URL).' }),
  signature: z.string().meta({ description: 'HMAC of method, key and expiry (part of the signed URL).' }),
});

/** A signed PUT's query: a whole artifact's, or a multipart part's (upload, part number and its sha256, all signed). */
const artifactPutParamsSchema = artifactUrlParamsSchema.extend({
  upload_id: z.string().optional().meta({ description: 'The multipart upload a part URL writes to.' }),
  part: z.string().optional().meta({ description: 'The part number (1-10000).' }),
  sha256: z.string().optional().meta({ description: "The part's sha256, hex: the bytes must hash to it." }),
});

type RequestName = keyof typeof REQUEST_SCHEMAS;
type ResponseName = keyof typeof RESPONSE_SCHEMAS;

interface OperationSpec {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete' | 'head';
  /** OpenAPI path (`{param}`). */
  path: string;
  summary: string;
  tag: string;
  query?: z.ZodObject;
  body?: { schema: RequestName; required: boolean };
  /** Success status -> body schema (undefined: no body). */
  responses: Record<number, { description: string; schema?: ResponseName; binary?: boolean }>;
}

const CFS = '/apis/cfs';
const IMS = '/apis/ims/v3/images';
const IMS_ALIAS = '/apis/ims/images';

function cfsOperations(): OperationSpec[] {
  const ops: OperationSpec[] = [];
  for (const v of ['v3', 'v2'] as const) {
    const v3 = v === 'v3';
    const sessions = `${CFS}/${v}/sessions`;
    const configurations = `${CFS}/${v}/configurations`;
    ops.push(
      {
        method: 'get',
        path: sessions,
        tag: 'sessions',
        summary: v3 ? 'One page of sessions matching the filters, in name order' : 'Every session matching the filters (400 when more than default_page_size match)',
        query: v3 ? v3SessionListParamsSchema : v2SessionListParamsSchema,
        responses: { 200: { description: 'The sessions', schema: v3 ? 'V3SessionDataCollection' : 'V2SessionArray' } },
      },
      {
        method: 'post',
        path: sessions,
        tag: 'sessions',
        summary: 'Create an image customization session',
        body: { schema: v3 ? 'V3SessionCreate' : 'V2SessionCreate', required: true },
        responses: v3 ? { 201: { description: 'Created', schema: 'V3SessionData' } } : { 200: { description: 'Created', schema: 'V2Session' } },
      },
      {
        method: 'delete',
        path: sessions,
        tag: 'sessions',
        summary: 'Delete every session matching the filters (status defaults to complete); running ones are stopped and cleaned up',
        query: v3 ? v3SessionDeleteParamsSchema : v2SessionDeleteParamsSchema,
        responses: v3 ? { 200: { description: 'The names deleted', schema: 'V3SessionIdCollection' } } : { 204: { description: 'Deleted' } },
      },
      {
        method: 'get',
        path: `${sessions}/{session_name}`,
        tag: 'sessions',
        summary: 'One session',
        responses: { 200: { description: 'The session', schema: v3 ? 'V3SessionData' : 'V2Session' } },
      },
      {
        method: 'delete',
        path: `${sessions}/{session_name}`,
        tag: 'sessions',
        summary: 'Delete a session, stopping and cleaning it up if it runs',
        responses: { 204: { description: 'Deleted' } },
      },
      {
        method: 'get',
        path: configurations,
        tag: 'configurations',
        summary: v3 ? 'One page of configurations, in name order' : 'Every configuration (400 when more than default_page_size)',
        query: v3 ? v3ConfigurationListParamsSchema : v2ConfigurationListParamsSchema,
        responses: { 200: { description: 'The configurations', schema: v3 ? 'V3ConfigurationDataCollection' : 'V2ConfigurationArray' } },
      },
      {
        method: 'get',
        path: `${configurations}/{configuration_id}`,
        tag: 'configurations',
        summary: 'One configuration',
        responses: { 200: { description: 'The configuration', schema: v3 ? 'V3ConfigurationData' : 'V2Configuration' } },
      },
      {
        method: 'put',
        path: `${configurations}/{configuration_id}`,
        tag: 'configurations',
        summary: 'Create or replace a configuration (v2 or v3 field names); branches are resolved to commits',
        query: configurationPutParamsSchema,
        body: { schema: v3 ? 'V3ConfigurationUpdate' : 'V2ConfigurationUpdate', required: true },
        responses: { 200: { description: 'The stored configuration', schema: v3 ? 'V3ConfigurationData' : 'V2Configuration' } },
      },
      {
        method: 'patch',
        path: `${configurations}/{configuration_id}`,
        tag: 'configurations',
        summary: 'Re-resolve every branch to its current commit',
        responses: { 200: { description: 'The updated configuration', schema: v3 ? 'V3ConfigurationData' : 'V2Configuration' } },
      },
      {
        method: 'delete',
        path: `${configurations}/{configuration_id}`,
        tag: 'configurations',
        summary: 'Delete a configuration no pending or running session uses',
        responses: { 204: { description: 'Deleted' } },
      },
      {
        method: 'get',
        path: `${CFS}/${v}/options`,
        tag: 'options',
        summary: 'The service options in force',
        responses: { 200: { description: 'The options', schema: v3 ? 'V3Options' : 'V2Options' } },
      },
      {
        method: 'patch',
        path: `${CFS}/${v}/options`,
        tag: 'options',
        summary: 'Set one or more options; unknown names are a 400',
        body: { schema: v3 ? 'V3OptionsUpdate' : 'V2OptionsUpdate', required: true },
        responses: { 200: { description: 'The options', schema: v3 ? 'V3Options' : 'V2Options' } },
      },
    );
  }
  ops.push({ method: 'get', path: OPENAPI_PATH, tag: 'documentation', summary: 'This document', responses: { 200: { description: 'OpenAPI 3.0 document' } } });
  return [...ops, ...sessionOperationDocs(), ...automationDocs(), ...sourceDocs(), ...productSettingsDocs()];
}

/** This product's own settings, outside `/apis/cfs` so that CFS clients never meet them among the options. */
function productSettingsDocs(): OperationSpec[] {
  const answer = { 200: { description: 'Every setting in force', schema: 'ProductSettings' as const } };
  return [
    { method: 'get', path: PRODUCT_SETTINGS_PATH, tag: 'settings', summary: "This product's own settings in force (not CFS options)", responses: answer },
    {
      method: 'patch',
      path: PRODUCT_SETTINGS_PATH,
      tag: 'settings',
      summary: 'Set one or more settings; unknown names (and CFS options, which live at /apis/cfs/v3/options) are a 400',
      body: { schema: 'ProductSettingsUpdate', required: true },
      responses: answer,
    },
  ];
}

/** This product's session operations (v3 only). */
function sessionOperationDocs(): OperationSpec[] {
  const session = `${CFS}/v3/sessions/{session_name}`;
  return [
    {
      method: 'get',
      path: `${session}/logs`,
      tag: 'sessions',
      summary: "A chunk of the session's Ansible logs from a cursor (poll with the returned cursor to follow a running session)",
      query: sessionLogParamsSchema,
      responses: { 200: { description: 'The logs from the cursor', schema: 'SessionLogChunk' } },
    },
    {
      method: 'get',
      path: `${session}/layers/{layer_index}/changes`,
      tag: 'sessions',
      summary:
        "What a layer changed in an image (files, and packages where the root has dpkg or rpm), from the layer cache's report under the layer's key; 404 (saying why) for an unknown session, layer or image, or when no report was recorded (the layer failed or was skipped, the layer cache was off, the run has not reached it)",
      query: layerChangesParamsSchema,
      responses: { 200: { description: "The layer's changes report", schema: 'LayerChanges' } },
    },
    {
      method: 'post',
      path: `${session}/release`,
      tag: 'sessions',
      summary: "End a failed session's debug hold now (its kept workspace is removed)",
      responses: { 200: { description: 'The session', schema: 'V3SessionData' } },
    },
    {
      method: 'get',
      path: `${session}/debug`,
      tag: 'sessions',
      summary: "What a held session's enter and rerun commands are built from when used: the kept workspace and the run document (no clone URLs); 409 when nothing is held",
      responses: { 200: { description: 'The held run' } },
    },
    {
      method: 'post',
      path: `${CFS}/v3/sessions/plan`,
      tag: 'sessions',
      summary: 'What a session create would build, per source image, and why (nothing is created)',
      body: { schema: 'V3SessionCreate', required: true },
      responses: { 200: { description: 'The plan', schema: 'SessionPlan' } },
    },
  ];
}

/** CFS v3 sources: a clone URL with a login kept in the secret store (never answered). */
function sourceDocs(): OperationSpec[] {
  const base = `${CFS}/v3/sources`;
  const one = `${base}/{source_id}`;
  return [
    { method: 'get', path: base, tag: 'sources', summary: 'One page of sources, in name order', query: sourceListParamsSchema, responses: { 200: { description: 'The sources', schema: 'V3SourceDataCollection' } } },
    {
      method: 'post',
      path: base,
      tag: 'sources',
      summary: 'Add a source; its login goes to the secret store (409 when the name exists)',
      body: { schema: 'V3SourceCreateData', required: true },
      responses: { 201: { description: 'The source', schema: 'V3SourceData' } },
    },
    { method: 'get', path: one, tag: 'sources', summary: 'One source', responses: { 200: { description: 'The source', schema: 'V3SourceData' } } },
    {
      method: 'patch',
      path: one,
      tag: 'sources',
      summary: 'Change the description, clone URL, CA bundle or login',
      body: { schema: 'V3SourceUpdateData', required: true },
      responses: { 200: { description: 'The source', schema: 'V3SourceData' } },
    },
    {
      method: 'post',
      path: one,
      tag: 'sources',
      summary: 'Restore a source whose login is already in the secret store',
      body: { schema: 'V3SourceRestoreData', required: true },
      responses: { 201: { description: 'The source', schema: 'V3SourceData' } },
    },
    { method: 'delete', path: one, tag: 'sources', summary: 'Delete a source no configuration names, and its login', responses: { 204: { description: 'Deleted' } } },
  ];
}

/** Automations: sessions started by image registrations and schedules (v3 only). */
function automationDocs(): OperationSpec[] {
  const base = `${CFS}/v3/automations`;
  const one = `${base}/{automation_name}`;
  return [
    { method: 'get', path: base, tag: 'automations', summary: 'Every automation', responses: { 200: { description: 'The automations', schema: 'AutomationCollection' } } },
    { method: 'get', path: one, tag: 'automations', summary: 'One automation, its last build and history', responses: { 200: { description: 'The automation', schema: 'Automation' } } },
    {
      method: 'put',
      path: one,
      tag: 'automations',
      summary: 'Create or replace an automation',
      body: { schema: 'AutomationSpec', required: true },
      responses: { 200: { description: 'The automation', schema: 'Automation' } },
    },
    { method: 'delete', path: one, tag: 'automations', summary: 'Delete an automation', responses: { 204: { description: 'Deleted' } } },
    { method: 'get', path: `${one}/plan`, tag: 'automations', summary: 'What the automation would do now and why (nothing is written)', responses: { 200: { description: 'The plan', schema: 'AutomationPlan' } } },
    { method: 'post', path: `${one}/run`, tag: 'automations', summary: 'Evaluate the automation now, as a schedule tick does', responses: { 200: { description: 'What it did', schema: 'AutomationRun' } } },
  ];
}

function imsOperations(): OperationSpec[] {
  const ops: OperationSpec[] = [];
  for (const base of [IMS, IMS_ALIAS]) {
    const alias = base === IMS_ALIAS ? ' (unversioned IMS alias)' : '';
    ops.push(
      {
        method: 'get',
        path: base,
        tag: 'images',
        summary: `The images${alias}: IMS's plain array. Extension: paging and filters (limit, after_id, name, name_prefix, name_contains, name_glob, arch, metadata_key); when more follow (past limit, or past 5 MB of JSON without it) a Link: <?...&after_id=...>; rel="next" header says where to continue`,
        query: imageListParamsSchema,
        responses: { 200: { description: 'The images', schema: 'ImageRecordArray' } },
      },
      {
        method: 'post',
        path: base,
        tag: 'images',
        summary: `Create an image record${alias}`,
        body: { schema: 'ImageCreateRecord', required: true },
        responses: { 201: { description: 'Created', schema: 'ImageRecord' } },
      },
      { method: 'get', path: `${base}/{image_id}`, tag: 'images', summary: `One image${alias}`, responses: { 200: { description: 'The image', schema: 'ImageRecord' } } },
      {
        method: 'patch',
        path: `${base}/{image_id}`,
        tag: 'images',
        summary: `Change an image's link, arch or metadata${alias}`,
        body: { schema: 'ImagePatchRecord', required: true },
        responses: { 200: { description: 'The image', schema: 'ImageRecord' } },
      },
      {
        method: 'delete',
        path: `${base}/{image_id}`,
        tag: 'images',
        summary: `Delete an image and its artifacts${alias}`,
        query: imageDeleteParamsSchema,
        responses: { 204: { description: 'Deleted' } },
      },
    );
  }
  ops.push(
    {
      method: 'post',
      path: `${IMS}/{image_id}/artifacts/{artifact}/upload-url`,
      tag: 'artifacts',
      summary: `A URL to PUT one artifact's bytes to (${ARTIFACT_NAMES.join(', ')}), a staging key registration promotes; it lasts at most the server's upload URL lifetime (15 minutes unless set), whatever expires_in asks; refused (409) once the image has a manifest`,
      body: { schema: 'ArtifactUrlRequest', required: false },
      responses: { 200: { description: 'The upload URL', schema: 'UploadUrl' } },
    },
    {
      method: 'post',
      path: `${IMS}/{image_id}/artifacts/{artifact}/download-url`,
      tag: 'artifacts',
      summary: "A URL to GET one artifact's bytes from, with their size and checksums",
      body: { schema: 'ArtifactUrlRequest', required: false },
      responses: { 200: { description: 'The download URL', schema: 'DownloadUrl' } },
    },
    {
      method: 'put',
      path: `${IMS}/{image_id}/manifest`,
      tag: 'artifacts',
      summary: "Register the uploaded artifacts: the server promotes each staged upload to the key the manifest links (no URL writes there), checks the store's measurement against the declared size, md5 and sha256 (400 naming the artifact when they differ), writes the IMS manifest.json and links the image to it",
      body: { schema: 'ManifestRegistration', required: true },
      responses: { 200: { description: 'The image', schema: 'ImageRecord' } },
    },
    { method: 'get', path: `${IMS}/{image_id}/manifest`, tag: 'artifacts', summary: "The image's manifest.json", responses: { 200: { description: 'The manifest', schema: 'ImageManifest' } } },
    ...multipartOperations(),
  );
  return ops;
}

/** Multipart uploads of one artifact (functions/core/images/multipart.ts). */
function multipartOperations(): OperationSpec[] {
  const base = `${IMS}/{image_id}/artifacts/{artifact}/multipart`;
  return [
    {
      method: 'post',
      path: base,
      tag: 'artifacts',
      summary: 'Start a multipart upload of one artifact to its staging key (any size the store holds, up to 10,000 parts of at most 5 GiB); part_size defaults to 16 MiB; 409 once the image has a manifest, 507 when the embedded store\'s disk cannot hold it',
      body: { schema: 'MultipartStart', required: true },
      responses: { 201: { description: 'The upload', schema: 'MultipartUpload' } },
    },
    {
      method: 'post',
      path: `${base}/{upload_id}/parts`,
      tag: 'artifacts',
      summary: "URLs for up to 100 parts, each bound to the part's sha256: the store refuses a PUT whose bytes hash otherwise",
      body: { schema: 'MultipartPartUrlsRequest', required: true },
      responses: { 200: { description: 'The part URLs', schema: 'MultipartPartUrls' } },
    },
    { method: 'get', path: `${base}/{upload_id}`, tag: 'artifacts', summary: 'The parts received so far (number, size, sha256), for resuming', responses: { 200: { description: 'The parts', schema: 'MultipartParts' } } },
    {
      method: 'post',
      path: `${base}/{upload_id}/complete`,
      tag: 'artifacts',
      summary: 'Join the parts into the staging key, once they are exactly the parts listed with their sha256 (400 naming a part missing, extra or different); register the manifest after',
      body: { schema: 'MultipartComplete', required: true },
      responses: { 200: { description: 'The joined object', schema: 'MultipartCompleted' } },
    },
    { method: 'delete', path: `${base}/{upload_id}`, tag: 'artifacts', summary: 'Drop a multipart upload and its parts', responses: { 204: { description: 'Dropped' } } },
  ];
}

/** The embedded server's signed artifact endpoint (served only where the store signs its own URLs). */
function artifactEndpointOperations(): OperationSpec[] {
  const path = '/artifacts/{key}';
  return [
    { method: 'get', path, tag: 'artifacts', summary: "An artifact's bytes (signed URL)", query: artifactUrlParamsSchema, responses: { 200: { description: 'The bytes', binary: true } } },
    { method: 'head', path, tag: 'artifacts', summary: "An artifact's size and ETag (signed URL)", query: artifactUrlParamsSchema, responses: { 200: { description: 'Headers only' } } },
    {
      method: 'put',
      path,
      tag: 'artifacts',
      summary: "Store an artifact's bytes (signed URL); streamed, measured and written atomically. A part URL (upload_id, part, sha256) stores one part of a multipart upload, refused (400) unless its bytes hash to the signed sha256",
      query: artifactPutParamsSchema,
      responses: { 200: { description: 'What the store measured', schema: 'StoredObject' } },
    },
  ];
}

/** Discovery and health (cfs-service.ts, ims-service.ts): what operators run first; they need no credential. */
function serviceOperations(): OperationSpec[] {
  const version = { 200: { description: "This product's release (not a CFS version)", schema: 'Version' as const } };
  const healthz = { description: 'db_status: the table and the artifact store; kafka_status: the workflow engine', schema: 'Healthz' as const };
  const imsHealth = { description: '{} when ready; {stores: "not_available"} when not', schema: 'ImsHealth' as const };
  return [
    ...['', '/', '/versions', '/v2', '/v3'].map((tail): OperationSpec => ({ method: 'get', path: `${CFS}${tail}`, tag: 'service', summary: 'The service version', responses: version })),
    { method: 'get', path: `${CFS}/healthz`, tag: 'service', summary: 'Whether the stores and the workflow engine answer (503 naming the part that does not)', responses: { 200: healthz, 503: healthz } },
    { method: 'get', path: '/apis/ims/healthz/ready', tag: 'service', summary: 'Whether the stores answer (500 when not)', responses: { 200: imsHealth, 500: imsHealth } },
    { method: 'get', path: '/apis/ims/healthz/live', tag: 'service', summary: 'The server answers', responses: { 200: imsHealth } },
    { method: 'get', path: '/apis/ims/version', tag: 'service', summary: "This product's release as a string", responses: { 200: { description: 'major.minor.patch', schema: 'ImsVersion' } } },
  ];
}

/** Every operation the app serves; `artifactEndpoint` when the embedded artifact routes are mounted. */
export function apiOperations(options: { artifactEndpoint: boolean }): OperationSpec[] {
  return [...cfsOperations(), ...imsOperations(), ...serviceOperations(), ...(options.artifactEndpoint ? artifactEndpointOperations() : [])];
}

type JsonObject = Record<string, unknown>;

/** Drops JSON Schema keywords OpenAPI 3.0 schema objects do not have (`$id`, `$schema`), everywhere. */
function forOpenApi(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(forOpenApi);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).filter(([key]) => key !== '$id' && key !== '$schema').map(([key, v]) => [key, forOpenApi(v)]));
}

function components(schemas: Record<string, z.ZodType>, io: 'input' | 'output'): Record<string, unknown> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
  const out = z.toJSONSchema(registry, { target: 'openapi-3.0', io, unrepresentable: 'any', uri: (id) => `#/components/schemas/${id}` });
  return forOpenApi(out.schemas) as Record<string, unknown>;
}

function queryParameters(schema: z.ZodObject): JsonObject[] {
  const json = z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, JsonObject>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, property]) => {
    const { description, deprecated, ...rest } = forOpenApi(property) as JsonObject;
    return {
      name,
      in: 'query',
      required: (json.required ?? []).includes(name),
      ...(description ? { description } : {}),
      ...(deprecated ? { deprecated } : {}),
      schema: rest,
    };
  });
}

/**
 * Path parameters, with the schemas of the rules their use cases apply (a name a PUT refuses is
 * refused by this pattern too); a GET or DELETE of a name no record can have answers 404.
 */
const PATH_PARAMETER_SCHEMAS: Record<string, z.ZodType> = {
  session_name: sessionNameSchema,
  configuration_id: configurationNameSchema,
  automation_name: automationNameSchema,
  source_id: sourceNameSchema,
  artifact: z.enum(ARTIFACT_NAMES),
  image_id: z.string().min(1).meta({ description: 'The image ID (a UUID the server assigned).' }),
  layer_index: z.string().regex(/^\d{1,6}$/).meta({ description: "A layer's index, from 0 (as in the log names)." }),
  key: z.string().min(1).meta({ description: 'The artifact key (`boot-images/<id>/<artifact>`); may contain `/`.' }),
};

function pathParameters(path: string): JsonObject[] {
  return [...path.matchAll(/\{(\w+)\}/g)].map(([, name]) => {
    const schema = PATH_PARAMETER_SCHEMAS[name!];
    const json = schema ? (forOpenApi(z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'any' })) as JsonObject) : { type: 'string', minLength: 1 };
    const { description, ...rest } = json;
    return { name, in: 'path', required: true, ...(description ? { description } : {}), schema: rest };
  });
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** The whole OpenAPI 3.0 document of the app. */
export function openApiDocument(options: { artifactEndpoint: boolean }): JsonObject {
  const paths: Record<string, Record<string, JsonObject>> = {};
  for (const op of apiOperations(options)) {
    const parameters = [...pathParameters(op.path), ...(op.query ? queryParameters(op.query) : [])];
    const responses: Record<string, JsonObject> = {};
    for (const [status, answer] of Object.entries(op.responses)) {
      const content = answer.schema
        ? { 'application/json': { schema: ref(answer.schema) } }
        : answer.binary
          ? { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } }
          : undefined;
      responses[status] = { description: answer.description, ...(content ? { content } : {}) };
    }
    responses.default = { description: 'An error (RFC 7807 problem details)', content: { 'application/problem+json': { schema: ref('ProblemDetails') } } };
    paths[op.path] ??= {};
    paths[op.path]![op.method] = {
      summary: op.summary,
      tags: [op.tag],
      operationId: `${op.method}${op.path.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(\w)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
      ...(parameters.length ? { parameters } : {}),
      ...(op.body ? { requestBody: { required: op.body.required, content: { 'application/json': { schema: ref(op.body.schema) } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.0.3',
    info: {
      title: 'CFS image customization (CFS v2/v3 and IMS v3 compatible)',
      version: '1',
      description:
        "CSM's Configuration Framework Service image customization sessions and the IMS v3 image registry, with this product's extensions (marked 'Extension' in the schemas, e.g. the session's status.steps, failure, plan, layers and message). Errors are RFC 7807 application/problem+json.",
    },
    tags: ['sessions', 'configurations', 'sources', 'options', 'settings', 'automations', 'images', 'artifacts', 'service', 'documentation'].map((name) => ({ name })),
    paths,
    components: { schemas: { ...components(REQUEST_SCHEMAS, 'input'), ...components(RESPONSE_SCHEMAS, 'output') } },
  };
}
