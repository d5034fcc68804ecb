import { contractResponseErrors, loadContract } from '../contract/response-errors.ts';

// The facts of the IMS spec this project holds itself; scripts/check-upstream-contract.ts keeps them true to upstream.
const IMS_CONTRACT = loadContract('ims-contract.json');

/**
 * Validates a response body against the IMS contract's schema for `method specPath` and `status`
 * (paths as the spec writes them, e.g. `/v3/images/{image_id}`). Returns the validator's errors,
 * or undefined when the body is valid.
 */
export async function imsResponseErrors(method: string, specPath: string, status: number, body: unknown): Promise<unknown> {
  return contractResponseErrors(IMS_CONTRACT, 'ims', method, specPath, status, body);
}
