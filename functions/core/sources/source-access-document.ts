import { z } from 'zod';

/**
 * `runner/<token>/source-access.json`: what RenderInventory leaves the session's runner in AWS:
 * short-lived credentials that read only the secrets the session's layers name, and those
 * names. The runner reads it once and deletes it; it never goes into Step Functions state or
 * the task's overrides (execution history and DescribeTasks would show it).
 */
export const sourceAccessDocumentSchema = z.object({
  secrets: z.array(z.string().min(1)).min(1),
  credentials: z.object({
    access_key_id: z.string().min(1),
    secret_access_key: z.string().min(1),
    session_token: z.string().min(1),
    expiration: z.iso.datetime({ offset: true }),
  }),
});

export type SourceAccessDocument = z.infer<typeof sourceAccessDocumentSchema>;
