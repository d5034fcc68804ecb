/** Where a session's working documents live in the artifact store (the layout is the core's). */
export { sessionKeys } from '../core/workflow/session-keys.ts';
