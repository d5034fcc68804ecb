/**
 * Timestamps as CFS writes them: RFC 3339 in UTC with a `Z` and whole seconds
 * (`%Y-%m-%dT%H:%M:%SZ`), so every record compares and displays the same way.
 */
export function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
