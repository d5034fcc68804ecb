import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { bearerTokenAuth, isLoopbackHost } from '../../functions/api/auth.ts';

function appWithToken(token: string): Hono {
  const app = new Hono();
  app.use('*', bearerTokenAuth(token));
  app.get('/apis/cfs/v3/sessions', (c) => c.json([]));
  app.get('/artifacts/*', (c) => c.text('bytes'));
  return app;
}

describe('the bearer token middleware', () => {
  it('answers 401 problem+json without a token and with a wrong one, and lets the right one through', async () => {
    // Arrange
    const app = appWithToken('s3cret');
    // Act
    const none = await app.request('/apis/cfs/v3/sessions');
    const wrong = await app.request('/apis/cfs/v3/sessions', { headers: { authorization: 'Bearer s3cre' } });
    const basic = await app.request('/apis/cfs/v3/sessions', { headers: { authorization: 'Basic s3cret' } });
    const right = await app.request('/apis/cfs/v3/sessions', { headers: { authorization: 'Bearer s3cret' } });
    // Assert
    for (const response of [none, wrong, basic]) {
      expect(response.status).toBe(401);
      expect(response.headers.get('content-type')).toBe('application/problem+json');
      expect(response.headers.get('www-authenticate')).toContain('Bearer');
    }
    expect(((await none.json()) as { detail: string }).detail).toContain('Authorization: Bearer');
    expect(right.status).toBe(200);
  });

  it('leaves signed artifact URLs to their own signature', async () => {
    // Act
    const response = await appWithToken('s3cret').request('/artifacts/boot-images/x/rootfs');
    // Assert
    expect(response.status).toBe(200);
  });

  it('refuses an empty token at construction', () => {
    // Act / Assert
    expect(() => bearerTokenAuth('')).toThrow(/must not be empty/);
  });

  it('counts only loopback addresses as safe without a token', () => {
    // Act / Assert
    expect(['127.0.0.1', '127.1.2.3', '::1', 'localhost'].every(isLoopbackHost)).toBe(true);
    expect(['0.0.0.0', '::', '192.168.1.10', '127.0.0.1.example.com'].some(isLoopbackHost)).toBe(false);
  });
});
