import { ConflictError, NotFoundError } from '../errors.ts';
import type { ImageRecord } from '../model/image.ts';
import { createSession } from '../sessions/session-use-cases.ts';
import { rfc3339 } from '../sessions/rfc3339.ts';
import { withHistory, type AutomationHistoryEntry, type AutomationRecord, type AutomationTrigger, type BuildInputs } from './automation-record.ts';
import { sessionRequestFor } from './automation-rules.ts';
import { Evaluation, type TriggerPorts } from './evaluation.ts';
import { AUTOMATION_TAG } from './fingerprint.ts';
import { compileGlob } from './glob.ts';
import { planAutomation, resolveConfiguration, sessionSlot, type AutomationPlan } from './plan.ts';

/**
 * The trigger: one implementation for both runtimes. The embedded runtime calls it from its
 * in-process bus (`Image Registered`) and its cron; in AWS an EventBridge rule and Scheduler
 * schedules invoke a Lambda that calls the same two functions.
 */

export type { TriggerPorts } from './evaluation.ts';

/** What one automation did on one trigger (also recorded in its history). */
export interface AutomationRunResult {
  automation: string;
  trigger: AutomationTrigger;
  outcome: AutomationHistoryEntry['outcome'];
  reason: string;
  session?: string;
  plan?: AutomationPlan;
}

/** The whole evaluation's results and how many git calls it made (the benchmark reports it). */
export interface EvaluationResult {
  results: AutomationRunResult[];
  git_calls: number;
}

/** How many automations one evaluation works on at once (their reads are shared either way). */
const CONCURRENCY = 8;

async function eachLimited<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]!);
    }
  });
  await Promise.all(workers);
  return out;
}

/** Appends a history entry (and the inputs of a build just started); an automation deleted meanwhile is left alone. */
async function record(ports: TriggerPorts, name: string, entry: AutomationHistoryEntry, build?: BuildInputs): Promise<void> {
  try {
    await ports.automations.update(name, (current) => ({
      ...current,
      history: withHistory(current.history ?? [], entry),
      ...(build ? { last_build: build } : {}),
    }));
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
  }
}

/**
 * Before a scheduled build: stores the branches' current commits in the configuration (as
 * CFS's PATCH does), since the session pins what the configuration holds. Returns why not to
 * build when the configuration was edited while this evaluation looked at it.
 */
async function storeResolvedCommits(ports: TriggerPorts, evaluation: Evaluation, plannedOn: AutomationRecord['configuration_name']): Promise<string | undefined> {
  const seen = await evaluation.configuration(plannedOn);
  const fresh = await ports.configurations.get(plannedOn);
  const same =
    seen &&
    fresh &&
    fresh.layers.length === seen.layers.length &&
    fresh.layers.every((l, i) => {
      const o = seen.layers[i]!;
      return l.name === o.name && l.clone_url === o.clone_url && l.playbook === o.playbook && l.branch === o.branch && (l.branch !== undefined || l.commit === o.commit);
    });
  if (!same) return `configuration '${plannedOn}' changed while it was evaluated; the next run uses the new one`;
  const resolved = await resolveConfiguration(evaluation, fresh);
  if (resolved.layers.every((l, i) => l.commit === fresh.layers[i]!.commit)) return undefined;
  await ports.configurations.put({ ...resolved, last_updated: rfc3339(ports.clock.now()) });
  return undefined;
}

/** Carries out a plan: records a skip or failure, or starts the session and records the build. */
async function execute(
  ports: TriggerPorts,
  evaluation: Evaluation,
  automation: AutomationRecord,
  plan: AutomationPlan,
  trigger: AutomationTrigger,
): Promise<AutomationRunResult> {
  const entry: AutomationHistoryEntry = {
    time: rfc3339(ports.clock.now()),
    trigger,
    outcome: 'skipped',
    reason: plan.reasons.join('; '),
    ...(plan.source ? { source_image_id: plan.source.id, source_name: plan.source.name } : {}),
    ...(plan.fingerprint ? { fingerprint: plan.fingerprint } : {}),
  };
  const finish = async (outcome: AutomationHistoryEntry['outcome'], reason: string, session?: string, build?: BuildInputs): Promise<AutomationRunResult> => {
    await record(ports, automation.name, { ...entry, outcome, reason, ...(session ? { session } : {}) }, build);
    return { automation: automation.name, trigger, outcome, reason, ...(session ? { session } : {}), plan };
  };
  if (plan.action === 'skip') return finish('skipped', entry.reason);
  if (plan.action === 'fail') return finish('failed', entry.reason);

  try {
    if (trigger !== 'image_registered') {
      const changed = await storeResolvedCommits(ports, evaluation, automation.configuration_name);
      if (changed) return finish('skipped', changed);
    }
    for (let tries = 0; tries < 3; tries++) {
      const slot = await sessionSlot(evaluation, automation.name, plan.fingerprint!, trigger);
      if (slot.busy) {
        const hold = slot.busy.status.debug;
        // A held session is running until its hold ends (then the next run takes the next name).
        const held = hold && !hold.released_at ? `, failed and held for debugging until ${hold.until}` : '';
        const state = `${slot.busy.status.session.status}${slot.busy.status.session.status === 'complete' ? `, succeeded ${slot.busy.status.session.succeeded}` : held}`;
        return finish('skipped', `already started: session ${slot.name} (${state}) builds these inputs (fingerprint ${plan.fingerprint!.slice(0, 12)})`, slot.name);
      }
      plan.session_name = slot.name;
      const request = sessionRequestFor(automation, slot.name, plan.source!.id, plan.result_name!, { [AUTOMATION_TAG]: automation.name });
      try {
        await createSession(ports, request);
      } catch (error) {
        // Another delivery of the same event (or tick) took the name first: look again.
        if (error instanceof ConflictError) continue;
        throw error;
      }
      const build: BuildInputs = {
        time: entry.time,
        session: slot.name,
        fingerprint: plan.fingerprint!,
        source: { id: plan.source!.id, name: plan.source!.name, rootfs_sha256: plan.source!.rootfs_sha256 },
        layers: plan.layers!.map(({ name, clone_url, commit, playbook, branch }) => ({ name, clone_url, commit, playbook, ...(branch !== undefined ? { branch } : {}) })),
        settings: plan.settings!,
        runner_version: ports.runnerVersion,
      };
      return finish('started', entry.reason, slot.name, build);
    }
    return finish('skipped', `the session names for fingerprint ${plan.fingerprint!.slice(0, 12)} were taken concurrently; the next run looks again`);
  } catch (error) {
    return finish('failed', `cannot start a session: ${(error as Error).message}`);
  }
}

/** Runs one automation's evaluation, turning an unexpected fault into a recorded failure. */
async function evaluateOne(
  ports: TriggerPorts,
  evaluation: Evaluation,
  automation: AutomationRecord,
  trigger: AutomationTrigger,
  eventImage?: ImageRecord,
): Promise<AutomationRunResult> {
  try {
    const problem = eventImage ? await evaluation.sourceProblem(eventImage, automation) : undefined;
    if (eventImage && problem) {
      const reason = problem;
      await record(ports, automation.name, {
        time: rfc3339(ports.clock.now()),
        trigger,
        outcome: 'skipped',
        reason,
        source_image_id: eventImage.id,
        source_name: eventImage.name,
      });
      return { automation: automation.name, trigger, outcome: 'skipped', reason };
    }
    const plan = await planAutomation(evaluation, automation, trigger, eventImage);
    return await execute(ports, evaluation, automation, plan, trigger);
  } catch (error) {
    const reason = `evaluation failed: ${(error as Error).message}`;
    await record(ports, automation.name, { time: rfc3339(ports.clock.now()), trigger, outcome: 'failed', reason }).catch(() => undefined);
    return { automation: automation.name, trigger, outcome: 'failed', reason };
  }
}

/**
 * `Image Registered`: every automation with `on_image_registered` whose selector matches the
 * image builds from it, unless the image may not be its source (one of its own results or made
 * from one: the loop guard; another automation's result, unless it asks for those) or, with
 * `only_if_changed`, an image already carries the fingerprint. The session name comes from the
 * automation and the fingerprint, so a redelivered event finds its session and starts none.
 * Automations the image does not match are not touched (and record nothing).
 */
export async function handleImageRegistered(ports: TriggerPorts, detail: { id?: unknown }): Promise<EvaluationResult> {
  const id = typeof detail.id === 'string' ? detail.id : '';
  const image = id ? await ports.images.get(id) : undefined;
  if (!image?.rootfs_registered) return { results: [], git_calls: 0 };
  const matching = (await ports.automations.list()).filter(
    (a) => a.on_image_registered && compileGlob(a.source.name_pattern).test(image.name) && (!a.source.arch || a.source.arch === image.arch),
  );
  const evaluation = new Evaluation(ports);
  const results = await eachLimited(matching, CONCURRENCY, (automation) => evaluateOne(ports, evaluation, automation, 'image_registered', image));
  return { results, git_calls: evaluation.gitCalls };
}

/**
 * A schedule tick (or `cfs automations run`, which is the same): re-resolves each named
 * automation's configuration branches, picks its newest source, and starts a session only when
 * something that goes into the image changed (no image carries the fingerprint); otherwise it
 * records a skip with the reason. All the automations named share one evaluation, so each
 * repository and branch is asked once. A name that no longer exists is reported, not thrown.
 */
export async function runAutomations(ports: TriggerPorts, names: string[], trigger: 'schedule' | 'run'): Promise<EvaluationResult> {
  const byName = new Map((await ports.automations.list()).map((a) => [a.name, a]));
  const evaluation = new Evaluation(ports);
  const results = await eachLimited(names, CONCURRENCY, async (name): Promise<AutomationRunResult> => {
    const automation = byName.get(name);
    if (!automation) return { automation: name, trigger, outcome: 'failed', reason: `automation '${name}' does not exist` };
    return evaluateOne(ports, evaluation, automation, trigger);
  });
  return { results, git_calls: evaluation.gitCalls };
}

/** `cfs automations plan NAME`: what a run would do now, and why; writes nothing. NotFoundError when missing. */
export async function planAutomationNow(ports: TriggerPorts, name: string): Promise<AutomationPlan & { git_calls: number }> {
  const automation = await ports.automations.get(name);
  if (!automation) throw new NotFoundError('automation', name);
  const evaluation = new Evaluation(ports);
  const plan = await planAutomation(evaluation, automation, 'plan');
  if (plan.action === 'build') {
    const slot = await sessionSlot(evaluation, automation.name, plan.fingerprint!, 'plan');
    plan.session_name = slot.name;
    if (slot.busy) {
      plan.action = 'skip';
      plan.reasons = [`already started: session ${slot.name} (${slot.busy.status.session.status}) builds these inputs`];
    }
  }
  return { ...plan, git_calls: evaluation.gitCalls };
}
