import { z } from 'zod';

/** The fields the ASL passes to the steps (see statemachines/image-customization.asl.json). */
export const sessionField = z.string().min(1, 'must name the session');
export const imageIdField = z.string().min(1, 'must name the image');

/** `{session}`: ValidateImages, RenderInventory, Cleanup. */
export const sessionInput = z.object({ session: sessionField });

/** `{session, image_id}`: one Map iteration (StageImage, PackageImage). */
export const imageInput = z.object({ session: sessionField, image_id: imageIdField });
