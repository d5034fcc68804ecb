import { z } from 'zod';
import { awsRoot } from '../adapters/aws/index.ts';
import { failSession } from '../steps/fail-session.ts';
import type { StepPorts } from '../steps/step-ports.ts';
import { sessionField } from './shared/inputs.ts';
import { stepHandler } from './shared/step-handler.ts';

/**
 * The Catch's `$.error` (`{Error, Cause}`). Read leniently: the failure path must record the
 * failure whatever shape the error took, so a missing or null field is just left out.
 */
const caught = z
  .object({ Error: z.string().nullish(), Cause: z.string().nullish() })
  .nullish()
  .transform((e) => (e ? { ...(e.Error ? { Error: e.Error } : {}), ...(e.Cause ? { Cause: e.Cause } : {}) } : undefined));

const input = z.object({ session: sessionField, error: caught });

/** FailSession: records the failure (`$.failure`), deregisters results, removes staged uploads. */
export const failSessionState = {
  state: 'FailSession',
  input,
  run: async (ports: StepPorts, parsed: z.infer<typeof input>) => (await failSession(ports, parsed)) ?? {},
};

export const handler = stepHandler({ ...failSessionState, ports: () => awsRoot().stepPorts() });
