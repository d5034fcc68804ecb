import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach } from 'vitest';

/**
 * Mocks an AWS SDK client class (aws-sdk-client-mock) for the suite it is called in: every test
 * starts from a mock with no behaviours and no recorded calls (reset before each test), and the
 * real client comes back after the suite. Call it before the suite's own beforeEach, which then
 * sets the behaviours.
 */
export const suiteMock: typeof mockClient = (client) => {
  const mock = mockClient(client);
  beforeEach(() => void mock.reset());
  afterAll(() => void mock.restore());
  return mock;
};
