import { SendTaskSuccessCommand, SFNClient } from '@aws-sdk/client-sfn';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SfnWorkflowStarter } from '../../functions/adapters/aws/sfn-workflow-starter.ts';
import { logger } from '../../functions/handlers/shared/step-handler.ts';
import { runTrigger, type TriggerDeps } from '../../functions/handlers/trigger.ts';
import { automationFakes, automationRecord, REPO, type AutomationFakes } from '../core/automation-fakes.ts';
import { imageWaitTable } from '../helpers/image-wait-table.ts';
import { suiteMock } from '../helpers/suite-mock.ts';

const TABLE = 'cfs-trigger-test';
const MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:cfs-sessions';
const A = 'a'.repeat(40);

logger.setLogLevel('SILENT');

/**
 * The trigger Lambda's work: image waits on the table (dynalite), wakes through the real
 * workflow starter with Step Functions mocked, the automations over the trigger's fakes.
 */
describe('the trigger Lambda', () => {
  const table = imageWaitTable(TABLE);
  let fakes: AutomationFakes;
  let deps: TriggerDeps;
  const sfn = suiteMock(SFNClient);

  beforeEach(async () => {
    fakes = automationFakes();
    fakes.git.branches.set(`${REPO}#main`, A);
    await fakes.configurations.put({ name: 'compute-config', last_updated: '', layers: [{ name: 'site', clone_url: REPO, playbook: 'site.yml', commit: A, branch: 'main' }] });
    await fakes.automations.create(automationRecord('compute'));
    const starter = new SfnWorkflowStarter(new SFNClient({}), MACHINE, table.waits, fakes.sessions);
    deps = { trigger: fakes, waits: table.waits, wake: (session) => starter.wake(session) };
  });
  afterEach(async () => {
    for (const w of await table.waits.list()) await table.waits.remove(w.session);
    fakes.dispose();
  });

  const registered = (id: string) => ({ source: 'cfs.ims', 'detail-type': 'Image Registered', detail: { id, name: 'compute-base-1', arch: 'x86_64', metadata: {} } });
  const wait = (session: string, missing: string[]) => ({ session, token: `token-${session}`, missing, recorded_at: '2026-11-26T10:00:00Z', expires_at: 2_000_000_000 });

  it('on Image Registered wakes only the sessions waiting for that image and starts the matching automation', async () => {
    // Arrange
    const image = await fakes.addImage('compute-base-1');
    await table.waits.put(wait('needs-it', [image.id, 'other-image']));
    await table.waits.put(wait('needs-another', ['other-image']));
    sfn.on(SendTaskSuccessCommand).resolves({});
    // Act
    const outcome = await runTrigger(deps, registered(image.id));
    // Assert
    expect(outcome.woken).toEqual(['needs-it']);
    expect(sfn.commandCalls(SendTaskSuccessCommand).map((c) => c.args[0].input.taskToken)).toEqual(['token-needs-it']);
    expect((await table.waits.list()).map((w) => w.session)).toEqual(['needs-another']);
    expect(outcome.evaluation.results).toMatchObject([{ automation: 'compute', outcome: 'started' }]);
    expect(fakes.workflow.started).toHaveLength(1);
  });

  it('a redelivered Image Registered event starts no second session and wakes nobody again', async () => {
    // Arrange
    const image = await fakes.addImage('compute-base-1');
    await table.waits.put(wait('needs-it', [image.id]));
    sfn.on(SendTaskSuccessCommand).resolves({});
    // Act
    await runTrigger(deps, registered(image.id));
    const again = await runTrigger(deps, registered(image.id));
    // Assert
    expect(again.woken).toEqual([]);
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(1);
    expect(fakes.workflow.started).toHaveLength(1);
    expect(await fakes.sessions.list()).toHaveLength(1);
  });

  it('still evaluates the automations when a wake fails, then fails the invocation so EventBridge retries it', async () => {
    // Arrange
    const image = await fakes.addImage('compute-base-1');
    await table.waits.put(wait('needs-it', [image.id]));
    sfn.on(SendTaskSuccessCommand).rejects(Object.assign(new Error('throttled'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } }));
    // Act
    const invocation = runTrigger(deps, registered(image.id));
    // Assert
    await expect(invocation).rejects.toThrow(/could not wake needs-it/);
    expect(fakes.workflow.started).toHaveLength(1);
    expect((await table.waits.list()).map((w) => w.session)).toEqual(['needs-it']);
  });

  it("a schedule's input evaluates its one automation with the schedule trigger", async () => {
    // Arrange
    await fakes.addImage('compute-base-1');
    // Act
    const outcome = await runTrigger(deps, { automation: 'compute' });
    // Assert
    expect(outcome.evaluation.results).toMatchObject([{ automation: 'compute', trigger: 'schedule', outcome: 'started' }]);
    expect((await fakes.automations.get('compute'))?.history?.[0]).toMatchObject({ trigger: 'schedule', outcome: 'started' });
  });

  it('refuses any other event with a ValidationError', async () => {
    // Act
    const invocation = runTrigger(deps, { source: 'cfs.sessions', 'detail-type': 'Session Completed', detail: {} });
    // Assert
    await expect(invocation).rejects.toMatchObject({ name: 'ValidationError' });
  });
});
