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
