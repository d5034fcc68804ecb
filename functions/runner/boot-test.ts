import { createWriteStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { BootSpec } from '../core/sessions/validation-spec.ts';
import { chooseAccelerator, type AcceleratorChoice } from './kvm-probe.ts';
import type { ChildExit, ProcessGroups } from './process-groups.ts';
import type { NetworkMode } from './sandbox-network.ts';
import type { IdMapping } from './user-namespace.ts';
import { startVm, type Accelerator, type RunningVm } from './vm-sandbox.ts';

/** What a packed result boots from: the files that will be registered. */
export interface BootFiles {
  rootfs: string;
  kernel: string;
  initrd: string;
}

/** A boot test's verdict, with what a session's status and failure reason need. */
export interface BootTestResult {
  passed: boolean;
  accelerator: Accelerator;
  /** Why that accelerator (the KVM probe's finding). */
  acceleratorReason: string;
  /** From QEMU's start to the match, the timeout or the VM's end (the probe not included). */
  durationMs: number;
  /** The console line that matched (escape sequences removed). */
  matchedLine?: string;
  /** The console's last lines (escape sequences removed), newest last. */
  lastLines: string[];
  /** One line for `status.failure.reason` when it did not pass. */
  reason?: string;
  /** How QEMU ended when it ended by itself before a match (a panic with -no-reboot, a bad argument). */
  exit?: ChildExit;
}

/**
 * Lines that say why a boot gave up, which what follows (a panic's stack trace, the shutdown an
 * initramfs starts) pushes out of the last lines: the kernel's panic, Debian's initramfs-tools
 * ALERT, dracut's and systemd's emergency mode, a mount that failed.
 */
const VERDICT = /Kernel panic - not syncing|ALERT! |Entering emergency mode|emergency shell|Failed to mount|Warning: \/dev\/\S+ does not exist/;

/** Lines kept for the failure reason and the result. */
const KEPT_LINES = 20;
/** Console lines are matched at most this long: a user's pattern never runs on unbounded text. */
const MAX_LINE = 4096;

/** Escape sequences (colours, cursor moves) and other control characters a console line carries; systemd colours unit names in its status lines. */
const CONTROL = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]|[\x00-\x08\x0b-\x1f\x7f]/g;

/** A console line as matched and shown: no escape sequences, no carriage return, at most MAX_LINE characters. */
export function cleanConsoleLine(line: string): string {
  return line.replace(CONTROL, '').slice(0, MAX_LINE);
}

/**
 * Watches a serial console: splits it into lines, keeps the last ones, and tests `pattern`
 * against each complete line and against the pending partial one (a login prompt ends without
 * a newline).
 */
export class ConsoleWatcher {
  private pending = '';
  readonly lines: string[] = [];
  matched: string | undefined;
  /** The first line that says why the boot gave up (VERDICT), kept however many lines follow it. */
  verdict: string | undefined;

  constructor(private readonly pattern: RegExp) {}

  /** Takes console output; true once the pattern has matched. */
  push(text: string): boolean {
    const parts = (this.pending + text).split('\n');
    this.pending = parts.pop()!.slice(-MAX_LINE);
    for (const raw of parts) this.line(cleanConsoleLine(raw));
    if (this.matched === undefined && this.pending !== '') {
      const partial = cleanConsoleLine(this.pending);
      if (this.pattern.test(partial)) this.matched = partial;
    }
    return this.matched !== undefined;
  }

  /** The last lines, the pending partial one included. */
  last(count = KEPT_LINES): string[] {
    const partial = cleanConsoleLine(this.pending);
    return [...this.lines, ...(partial.trim() ? [partial] : [])].slice(-count);
  }

  private line(line: string): void {
    if (this.matched === undefined && this.pattern.test(line)) this.matched = line;
    if (this.verdict === undefined && VERDICT.test(line)) this.verdict = line;
    this.lines.push(line);
    if (this.lines.length > KEPT_LINES) this.lines.shift();
  }
}

/** A console line in a failure reason: at most this many characters (the reason is one bounded line). */
const REASON_LINE = 100;

/**
 * The last non-empty lines (three, each cut to REASON_LINE characters), joined for a one-line
 * reason; led by the line that says why (a VERDICT line) when there was one, then only the last two.
 */
export function tail(lines: string[], verdict?: string): string {
  const cut = (line: string) => (line.length > REASON_LINE ? `${line.slice(0, REASON_LINE - 1)}…` : line);
  const shown = lines.filter((l) => l.trim() !== '').slice(verdict ? -2 : -3).map((l) => cut(l.trim()));
  if (verdict && !shown.includes(cut(verdict.trim()))) shown.unshift(cut(verdict.trim()), '...');
  return shown.length > 0 ? shown.join(' | ') : '(the console printed nothing)';
}

/** What a boot test needs. */
export interface BootTestOptions {
  files: BootFiles;
  boot: BootSpec;
  /** The VM's network: `egress` only when `boot.network` asks for it and the server's setting allows it (the caller decides). */
  network: NetworkMode;
  /** The sandbox's id mapping; undefined in container mode, where QEMU runs without one (the container is the boundary). */
  mapping: IdMapping | undefined;
  groups: ProcessGroups;
  /** The serial console (and QEMU's own messages, marked `# qemu:`) is written here as it comes. */
  consoleLog: string;
  /** The accelerator already chosen (a runner probes once for all its images); probed here when absent. */
  accelerator?: AcceleratorChoice;
  /** Aborting it kills the VM at once; the result then says the test was stopped. */
  signal?: AbortSignal;
  /** A test's hook: the VM as soon as it started. */
  onStart?: (vm: RunningVm, name: string) => void;
}

/**
 * Boots a packed result with its own kernel and initrd, the rootfs as /dev/vda read-only, and
 * `panic=-1` appended to the kernel parameters (with -no-reboot, a panic ends the VM at once).
 * Passes when a console line matches `boot.success_pattern` before `boot.timeout_seconds`.
 * The VM is killed at the end on every path (match, timeout, its own end, abort, an error
 * here), and the result is returned only once it is gone. x86_64 only.
 */
export async function runBootTest(options: BootTestOptions): Promise<BootTestResult> {
  const { boot, files } = options;
  const choice = options.accelerator ?? (await chooseAccelerator({ kernel: files.kernel, mapping: options.mapping, groups: options.groups, signal: options.signal}));
  const pattern = new RegExp(boot.success_pattern);
  const watcher = new ConsoleWatcher(pattern);
  const log = createWriteStream(options.consoleLog, { mode: 0o640 });
  const logClosed = new Promise<void>((resolve) => log.once('close', () => resolve()));
  // Output still arriving while the VM is being killed is dropped once the log is closed.
  const write = (data: string | Buffer) => void (log.writableEnded ? undefined : log.write(data));
  const name = `cfs-boot-${randomBytes(6).toString('hex')}`;
  write(`# CFS boot test ${name}: ${choice.accelerator} (${choice.reason}), ${boot.memory_mib} MiB, pattern /${boot.success_pattern}/, timeout ${boot.timeout_seconds}s\n`);
  const started = performance.now();
  let vm: RunningVm | undefined;
  let stderr = '';
  const base = { accelerator: choice.accelerator, acceleratorReason: choice.reason };
  try {
    if (options.signal?.aborted) return { ...base, passed: false, durationMs: 0, lastLines: [], reason: 'the boot test was stopped before the VM started' };
    vm = await startVm(
      {
        name,
        accelerator: choice.accelerator,
        memoryMib: boot.memory_mib,
        kernelCommandLine: `${boot.kernel_parameters} panic=-1`,
        network: options.network,
        kernel: files.kernel,
        initrd: files.initrd,
        rootfs: files.rootfs,
      },
      { mapping: options.mapping, groups: options.groups },
    );
    options.onStart?.(vm, name);
    const running = vm;
    const outcome = await new Promise<'matched' | 'timeout' | 'aborted' | ChildExit>((resolve) => {
      running.child.stdout!.on('data', (chunk: Buffer) => {
        write(chunk);
        if (watcher.push(chunk.toString('utf8'))) resolve('matched');
      });
      running.child.stderr!.on('data', (chunk: Buffer) => {
        const text = chunk.toString('utf8');
        stderr = (stderr + text).slice(-4000);
        write(text.replace(/^(?=.)/gm, '# qemu: '));
      });
      const timer = setTimeout(() => resolve('timeout'), boot.timeout_seconds * 1000);
      const onAbort = () => resolve('aborted');
      options.signal?.addEventListener('abort', onAbort, { once: true });
      void running.exited.then(
        (exit) => resolve(exit),
        () => resolve({ code: null, signal: null }),
      );
      void running.exited.finally(() => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
      });
    });
    const durationMs = Math.round(performance.now() - started);
    const lastLines = watcher.last();
    const what = `/${boot.success_pattern}/`;
    if (outcome === 'matched') return { ...base, passed: true, durationMs, matchedLine: watcher.matched!, lastLines };
    if (outcome === 'timeout') return { ...base, passed: false, durationMs, lastLines, reason: `the console did not print ${what} within ${boot.timeout_seconds}s (${choice.accelerator}); last console lines: ${tail(lastLines, watcher.verdict)}` };
    if (outcome === 'aborted') return { ...base, passed: false, durationMs, lastLines, reason: 'the boot test was stopped before the console printed the pattern' };
    const how = outcome.signal ? `was killed by ${outcome.signal}` : `exited with ${outcome.code}`;
    const qemuSaid = stderr.trim() ? `; qemu: ${stderr.trim().split('\n').slice(-2).join(' | ')}` : '';
    return { ...base, passed: false, durationMs, lastLines, exit: outcome, reason: `the VM stopped before the console printed ${what} (qemu ${how}${qemuSaid}); last console lines: ${tail(lastLines, watcher.verdict)}` };
  } finally {
    // Every path ends here: the VM goes, then the log is complete.
    await vm?.kill();
    log.end();
    await logClosed;
  }
}
