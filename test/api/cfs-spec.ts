import { contractResponseErrors, loadContract } from '../contract/response-errors.ts';

// The facts of the CFS spec (v2 and v3) this project holds itself; scripts/check-upstream-contract.ts keeps them true to upstream.
const CFS_CONTRACT = loadContract('cfs-contract.json');

/**
 * Validates a response body against the CFS contract's schema for `method specPath` and `status`
 * (spec paths, e.g. `/v3/sessions/{session_name}`). Returns the validator's errors, or
 * undefined when the body is valid.
 */
export async function cfsResponseErrors(method: string, specPath: string, status: number, body: unknown): Promise<unknown> {
  return contractResponseErrors(CFS_CONTRACT, 'cfs', method, specPath, status, body);
}
