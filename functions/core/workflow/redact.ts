/** A clone URL without `user:password@`, so secrets never reach logs, status, events or metadata. */
export function redactCloneUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.username && !parsed.password) return url;
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    // scp-like ssh URLs (user@host:path) carry a user name, never a password.
    return url;
  }
}

/**
 * Free text (an error message, a tool's stderr) with the user information of every
 * `scheme://user:password@host` URL in it removed, for text that may quote a clone URL.
 */
export function redactUrlsInText(text: string): string {
  return text.replace(/\b([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^\s/?#@'"]+@/g, '$1');
}

/** What stands for a credential in a clone URL a client is shown. */
export const MASKED_CREDENTIAL = '***';

/**
 * A clone URL as answers show it: the password replaced by `***` (`https://user:***@host/...`),
 * or a lone user name, which is often a token (`https://<token>@host/...`), replaced by `***`.
 * Sending this form back (a PUT of what a GET returned) keeps the stored credential.
 */
export function maskCloneUrlCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.username && !parsed.password) return url;
    if (parsed.password) parsed.password = MASKED_CREDENTIAL;
    else parsed.username = MASKED_CREDENTIAL;
    return parsed.toString();
  } catch {
    return url;
  }
}
