import { z } from 'zod';
import { IMAGE_ARCHES } from './schemas.ts';

/**
 * The query parameters of `GET /apis/ims/v3/images` (and its unversioned alias), in one place:
 * the listing validates every request with this schema (a parameter it does not name is a 400),
 * and the OpenAPI document describes the parameters with it. IMS itself takes none: these are
 * this product's extension for registries too large for one response (see README, "Image lists").
 */
export const imageListParamsSchema = z.strictObject({
  limit: z.coerce
    .number({ error: 'must be an integer from 1 to 1000' })
    .int('must be an integer from 1 to 1000')
    .min(1, 'must be an integer from 1 to 1000')
    .max(1000, 'must be an integer from 1 to 1000')
    .optional()
    .meta({ description: 'At most this many images (1 to 1000). Without limit or after_id the whole list is answered while it fits one response.' }),
  after_id: z
    .string()
    .max(2048, 'must be the after_id of a previous page\'s Link header')
    .optional()
    .meta({ description: 'Where to continue: the `after_id` of the previous page\'s `Link: <...>; rel="next"` header (opaque).' }),
  name: z.string().optional().meta({ description: 'Only images with exactly this name (read from the name index).' }),
  name_prefix: z.string().optional().meta({ description: 'Only images whose name starts with this (read from the name index, in name order).' }),
  name_contains: z.string().optional().meta({ description: 'Only images whose name contains this string (a bounded scan: a page may come back short with a next link).' }),
  name_glob: z
    .string()
    .min(1, 'must not be empty')
    .max(255, 'must be at most 255 characters (the longest image name)')
    .optional()
    .meta({ description: 'Only images whose whole name matches this shell glob (`*`, `?`, `[a-z]`); the literal text before the first wildcard is read from the name index.', example: 'compute-*' }),
  arch: z.enum(IMAGE_ARCHES, { error: `must be one of ${IMAGE_ARCHES.join(', ')}` }).optional().meta({ description: 'Only images of this architecture.' }),
  metadata_key: z.string().optional().meta({ description: 'Only images whose metadata has this key.' }),
});

/** Every query parameter the image listing takes (for routes and checks that must agree with it). */
export const IMAGE_LIST_PARAMS = Object.keys(imageListParamsSchema.shape) as Array<keyof typeof imageListParamsSchema.shape>;

export type ImageListParams = z.output<typeof imageListParamsSchema>;
