/**
 * An HTTP-level refusal that is not a domain error (malformed or oversized body, a method the
 * route does not serve, a bad query parameter). The app's error handler turns it into
 * problem+json with this status.
 */
export class HttpProblem extends Error {
  override readonly name = 'HttpProblem' as const;
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}
