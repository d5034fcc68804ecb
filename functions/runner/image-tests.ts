import { createReadStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { BootSpec, ValidationSpec } from '../core/sessions/validation-spec.ts';
import type { ImageTests, RunDocument } from '../core/workflow/run-document.ts';
import { testLogKey } from '../core/workflow/session-keys.ts';
import type { ArtifactStore } from '../ports/artifact-store.ts';
import { runBootTest, type BootFiles, type BootTestResult } from './boot-test.ts';
import { oneLine, RunnerFailure } from './failures.ts';
import { runImageChecks } from './image-checks.ts';
import { chooseAccelerator, type AcceleratorChoice } from './kvm-probe.ts';
import type { ProcessGroups } from './process-groups.ts';
import type { ProgressRecorder } from './progress.ts';
import type { NetworkMode } from './sandbox-network.ts';
import type { IdMapping } from './user-namespace.ts';
import type { WorkspaceLayout } from './workspace.ts';

/** What testing the images of one run needs. */
export interface ImageTestContext {
  document: Pick<RunDocument, 'logs_prefix'>;
  validation: ValidationSpec;
  layout: WorkspaceLayout;
  groups: ProcessGroups;
  /** The sandbox's id mapping; undefined in container mode (the container is the boundary). */
  mapping: IdMapping | undefined;
  /** The operator's network setting: a VM gets egress only when its boot asks and this allows it. */
  network: NetworkMode;
  store: ArtifactStore;
  progress: ProgressRecorder;
  now: () => Date;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/** An image's test record in the outcome, made on first use. */
function testsOf(record: { tests?: ImageTests }): ImageTests {
  record.tests ??= { checks: [] };
  return record.tests;
}

/** Uploads a finished log; a log that cannot be stored never fails the image (the verdict stands). */
async function storeLog(context: ImageTestContext, path: string, key: string): Promise<void> {
  try {
    await context.store.put(key, createReadStream(path), { contentType: 'text/plain; charset=utf-8' });
  } catch (error) {
    context.log(`could not store the test log ${key}: ${(error as Error).message}`);
  }
}

/**
 * Runs the session's checks in one customized root (issue 18), recording each in the outcome
 * and the progress document and storing its output as a session log. Every check runs; any
 * failure fails the image with the first failed check's reason.
 */
export async function checkImage(context: ImageTestContext, image: { image_id: string; root: string }, record: { tests?: ImageTests }): Promise<void> {
  const { validation, progress, now } = context;
  if (validation.checks.length === 0) return;
  const tests = testsOf(record);
  const logDir = join(context.layout.logs, 'tests', image.image_id);
  let started = now();
  context.log(`image ${image.image_id}: running ${validation.checks.length} check(s) in the customized root`);
  const results = await runImageChecks({
    checks: validation.checks,
    root: image.root,
    layout: context.layout,
    mapping: context.mapping,
    groups: context.groups,
    logDir,
    signal: context.signal,
    onStart: async (check) => {
      started = now();
      await progress.checkStarted(image.image_id, check.name);
    },
    onEnd: async (result) => {
      const state = result.passed ? 'succeeded' : 'failed';
      const key = testLogKey(context.document.logs_prefix, image.image_id, { check: result.name });
      await storeLog(context, result.logPath, key);
      tests.checks.push({
        name: result.name,
        exit_code: result.exitCode,
        state,
        start_time: started.toISOString(),
        end_time: now().toISOString(),
        duration_ms: result.durationMs,
        log_key: key,
        ...(result.reason ? { reason: oneLine(result.reason) } : {}),
      });
      context.log(`image ${image.image_id}: check '${result.name}' ${state} (${result.durationMs} ms)`);
      await progress.checkEnded(image.image_id, result.name, state, result.durationMs);
    },
  });
  const failed = results.find((r) => !r.passed);
  if (failed) {
    await progress.testEnded(image.image_id, 'failed');
    throw new RunnerFailure('test', `image ${image.image_id} failed its test: ${failed.reason}`, { image: image.image_id });
  }
  if (!validation.boot) await progress.testEnded(image.image_id, 'succeeded');
}

/**
 * Boots packed results in a VM, one after another; the accelerator is chosen once per run,
 * with the first image's kernel (the KVM probe), and recorded with every boot.
 */
export class BootTester {
  private choice: AcceleratorChoice | undefined;

  constructor(
    private readonly context: ImageTestContext,
    private readonly boot: BootSpec,
  ) {}

  /** Boots one result; a VM that does not print the pattern fails the image with the console's last lines. */
  async test(imageId: string, files: { rootfs: string; kernel?: string; initrd?: string }, record: { tests?: ImageTests }): Promise<void> {
    const { context, boot } = this;
    const tests = testsOf(record);
    const key = testLogKey(context.document.logs_prefix, imageId, 'boot');
    const fail = async (reason: string): Promise<never> => {
      await context.progress.testEnded(imageId, 'failed');
      throw new RunnerFailure('test', `image ${imageId} failed its boot test: ${reason}`, { image: imageId });
    };
    if (!files.kernel) return fail('the result has no kernel to boot (none in its /boot, none in its source image)');
    if (!files.initrd) return fail('the result has no initrd to boot (none in its /boot, none in its source image)');
    const mapping = context.mapping;
    try {
      this.choice ??= await chooseAccelerator({ kernel: files.kernel, mapping, groups: context.groups, signal: context.signal });
    } catch (error) {
      return fail(`the VM could not be run: ${(error as Error).message}`);
    }
    const network: NetworkMode = boot.network && context.network === 'egress' ? 'egress' : 'none';
    if (boot.network && network === 'none') context.log(`image ${imageId}: the boot asks for a network, but this server runs with --network none: booting without one`);
    const logDir = join(context.layout.logs, 'tests', imageId);
    await mkdir(logDir, { recursive: true });
    const consoleLog = join(logDir, 'boot-console.log');
    await context.progress.bootStarted(imageId, this.choice.accelerator);
    const started = context.now();
    context.log(`image ${imageId}: booting the packed result (${this.choice.accelerator}: ${this.choice.reason})`);
    const bootFiles: BootFiles = { rootfs: files.rootfs, kernel: files.kernel, initrd: files.initrd };
    let result: BootTestResult;
    try {
      result = await runBootTest({ files: bootFiles, boot, network, mapping, groups: context.groups, consoleLog, accelerator: this.choice, signal: context.signal });
    } catch (error) {
      // QEMU or its sandbox could not start: the image is unproven, which fails it at test.
      await context.progress.bootEnded(imageId, 'failed', 0);
      return fail(`the VM could not be run: ${(error as Error).message}`);
    }
    await storeLog(context, consoleLog, key);
    const state = result.passed ? 'succeeded' : 'failed';
    tests.boot = {
      accelerator: result.accelerator,
      accelerator_reason: result.acceleratorReason,
      state,
      start_time: started.toISOString(),
      end_time: context.now().toISOString(),
      duration_ms: result.durationMs,
      log_key: key,
      ...(result.matchedLine ? { matched_line: result.matchedLine } : {}),
      ...(result.reason ? { reason: oneLine(result.reason) } : {}),
    };
    context.log(`image ${imageId}: boot test ${state} on ${result.accelerator} in ${result.durationMs} ms${result.matchedLine ? `: ${result.matchedLine}` : ''}`);
    await context.progress.bootEnded(imageId, state, result.durationMs);
    if (!result.passed) return fail(result.reason ?? 'the console did not print the pattern');
    await context.progress.testEnded(imageId, 'succeeded');
  }
}
