import { describe, expect, it } from 'vitest';
import { cfsResponseErrors } from '../api/cfs-spec.ts';
import { imsResponseErrors } from '../api/ims-spec.ts';

const IMAGE = { id: '3fa85f64-5717-4562-b3fc-2c963f66afa6', name: 'compute-base', created: '2026-11-26T09:00:00Z', arch: 'x86_64' };
const SESSION = {
  name: 'example',
  configuration: { name: 'configurations-example', limit: '' },
  target: { definition: 'image', groups: [{ name: 'Application', members: [IMAGE.id] }], image_map: [] },
  status: { session: { status: 'pending', succeeded: 'none', job: 'execution-example', start_time: '2026-11-26T09:00:00Z' }, artifacts: [] },
};

describe('the API tests validate bodies against the project contract', () => {
  it('accepts an IMS image record and a CFS v3 session that follow it', async () => {
    // Act
    const image = await imsResponseErrors('GET', '/v3/images/{image_id}', 200, IMAGE);
    const session = await cfsResponseErrors('get', '/v3/sessions/{session_name}', 200, SESSION);
    // Assert
    expect(image).toBeUndefined();
    expect(session).toBeUndefined();
  });

  it('reports an IMS image without its required id, with a name of the wrong type and an arch outside the enum', async () => {
    // Act
    const errors = await imsResponseErrors('GET', '/v3/images/{image_id}', 200, { name: 7, arch: 'riscv64' });
    // Assert
    expect(errors).toMatchObject({
      errors: expect.arrayContaining([
        expect.objectContaining({ errorCode: 'required.openapi.responseValidation' }),
        expect.objectContaining({ path: 'name', errorCode: 'type.openapi.responseValidation' }),
        expect.objectContaining({ path: 'arch', errorCode: 'enum.openapi.responseValidation' }),
      ]),
    });
  });

  it('reports a CFS session whose status and start time break their enum and format', async () => {
    // Act
    const errors = await cfsResponseErrors('get', '/v3/sessions/{session_name}', 200, {
      ...SESSION,
      status: { ...SESSION.status, session: { ...SESSION.status.session, status: 'waiting', start_time: 'yesterday' } },
    });
    // Assert
    expect(errors).toMatchObject({
      errors: expect.arrayContaining([
        expect.objectContaining({ path: 'status/session/status', errorCode: 'enum.openapi.responseValidation' }),
        expect.objectContaining({ path: 'status/session/start_time', errorCode: 'format.openapi.responseValidation' }),
      ]),
    });
  });

  it('refuses a response the contract does not hold, naming the command that adds it', async () => {
    // Act
    const validating = cfsResponseErrors('get', '/v3/components', 200, {});
    // Assert
    await expect(validating).rejects.toThrow("npx tsx scripts/check-upstream-contract.ts --add cfs 'get /v3/components 200'");
  });
});
