import { z } from 'zod';
import { awsRoot } from '../adapters/aws/index.ts';
import { ValidationError } from '../core/errors.ts';
import { handleImageRegistered, runAutomations, type EvaluationResult, type TriggerPorts } from '../core/automations/trigger.ts';
import type { ImageWait } from '../steps/wait-for-images.ts';
import { logger, type LambdaInvocationContext } from './shared/step-handler.ts';

/** An EventBridge `Image Registered` event (the rule on source `cfs.ims` delivers it whole). */
const imageRegistered = z.object({ source: z.literal('cfs.ims'), 'detail-type': z.literal('Image Registered'), detail: z.looseObject({ id: z.string().min(1) }) });
/** A schedule's input: `{"automation": name}` (EventBridgeSchedulerSync sets it). */
const scheduled = z.object({ automation: z.string().min(1) });

/** What the trigger needs: the automations' ports, the open image waits and a way to end one. */
export interface TriggerDeps {
  trigger: TriggerPorts;
  waits: { list(): Promise<ImageWait[]> };
  wake(session: string): Promise<boolean>;
}

/** What one invocation did (returned, so a test or a manual invoke sees it; logged too). */
export interface TriggerOutcome {
  woken: string[];
  evaluation: EvaluationResult;
}

/**
 * The trigger Lambda's work. `Image Registered`: wakes every session whose WaitForImages is
 * missing that image, then starts the automations it matches. A schedule: evaluates its one
 * automation. Both are safe to repeat (a wake of an ended wait is a no-op; session names are
 * deterministic), so a failure is thrown after all the work was tried, and EventBridge's retries
 * (then the dead-letter queue) deliver the event again.
 */
export async function runTrigger(deps: TriggerDeps, event: unknown): Promise<TriggerOutcome> {
  const schedule = scheduled.safeParse(event);
  if (schedule.success) return { woken: [], evaluation: await runAutomations(deps.trigger, [schedule.data.automation], 'schedule') };
  const registered = imageRegistered.safeParse(event);
  if (!registered.success) throw new ValidationError('the trigger takes an Image Registered event or a schedule input {"automation": name}', 'event');

  const id = registered.data.detail.id;
  const waiting = (await deps.waits.list()).filter((w) => w.missing.includes(id));
  const wakes = await Promise.allSettled(waiting.map(async (w) => ((await deps.wake(w.session)) ? w.session : undefined)));
  const woken = wakes.flatMap((r) => (r.status === 'fulfilled' && r.value ? [r.value] : []));
  const evaluation = await handleImageRegistered(deps.trigger, registered.data.detail);
  const failed = wakes.flatMap((r, i) => (r.status === 'rejected' ? [`${waiting[i]!.session}: ${String((r.reason as Error)?.message ?? r.reason)}`] : []));
  if (failed.length > 0) throw new Error(`image '${id}': could not wake ${failed.join('; ')}`);
  return { woken, evaluation };
}

/** Invoked by the `Image Registered` rule and by every automation's Scheduler schedule. */
export async function handler(event: unknown, context?: LambdaInvocationContext): Promise<TriggerOutcome> {
  if (context) logger.addContext(context);
  logger.resetKeys();
  const root = awsRoot();
  const outcome = await runTrigger({ trigger: root.triggerPorts(), waits: root.waits(), wake: (session) => root.starter().wake(session) }, event);
  logger.info('trigger evaluated', {
    woken: outcome.woken,
    results: outcome.evaluation.results.map((r) => ({ automation: r.automation, outcome: r.outcome, reason: r.reason, session: r.session })),
  });
  return outcome;
}
