/**
 * What proving a result costs (issue 18), on the Debian 12 test fixture (a real root with its
 * kernel and initrd, built or taken from the fixture cache):
 *
 * 1. the boot alone: raw `qemu-system-x86_64` (no sandbox, the same accelerator, memory, files
 *    and kernel command line) against the runner's boot test (user namespace, bwrap, seccomp,
 *    the rootfs and boot files by descriptor), each timed from start to the console's
 *    "Reached target ... Multi-User System" line;
 * 2. the gate in a run: the same runner run (stage, one small layer, pack) without validation
 *    and with one check and the boot test, so the difference is the gate's cost per image next
 *    to the session's own time.
 * Rounds alternate the order so neither side gets the warmer cache.
 *
 *   npx tsx bench/boot-gate.bench.ts        (BOOT_BENCH_ROUNDS=N, default 2; also `npm run bench -- boot-gate`)
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsArtifactStore } from '../functions/adapters/local/fs-artifact-store.ts';
import { parseValidationSpec } from '../functions/core/sessions/validation-spec.ts';
import { runBootTest } from '../functions/runner/boot-test.ts';
import { chooseAccelerator } from '../functions/runner/kvm-probe.ts';
import { ProcessGroups } from '../functions/runner/process-groups.ts';
import { runCustomization } from '../functions/runner/run-customization.ts';
import { parseRunDocument } from '../functions/runner/run-document.ts';
import { rootIdMapping } from '../functions/runner/user-namespace.ts';
import { debianRoot } from '../test/helpers/debian-root.ts';
import { TempRepos } from '../test/helpers/git-repo.ts';
import { localRunDocumentFor } from '../test/helpers/run-document.ts';

const ROUNDS = Number(process.env.BOOT_BENCH_ROUNDS ?? 2);
const IMAGE = '9d3e1f2a-4b5c-4d6e-8f70-8192a3b4c5d6';
const PATTERN = 'Reached target .*Multi-User System';
const PARAMETERS = 'root=/dev/vda rootfstype=squashfs ro console=ttyS0 panic=-1';
const MEMORY_MIB = 1024;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const fixture = await debianRoot();
const found = await rootIdMapping();
if ('problem' in found) throw new Error(found.problem);
const mapping = found;
const choice = await chooseAccelerator({ kernel: fixture.kernel, mapping, groups: new ProcessGroups() });
console.log(`accelerator: ${choice.accelerator} (${choice.reason})`);

/** Raw QEMU, as a person would run it: milliseconds from start to the pattern on the console. */
function rawBoot(): Promise<number> {
  const args = ['-nodefaults', '-no-user-config', '-machine', `pc,accel=${choice.accelerator}`, '-smp', '1', '-m', String(MEMORY_MIB)];
  args.push('-display', 'none', '-serial', 'stdio', '-no-reboot', '-kernel', fixture.kernel, '-initrd', fixture.initrd, '-append', PARAMETERS);
  args.push('-drive', `file=${fixture.rootfs},format=raw,if=virtio,readonly=on`, '-nic', 'none');
  const started = performance.now();
  const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let console_ = '';
  return new Promise((resolve, reject) => {
    qemu.stdout.on('data', (chunk: Buffer) => {
      console_ = (console_ + chunk.toString('utf8')).slice(-8192);
      if (new RegExp(PATTERN).test(console_)) {
        const ms = performance.now() - started;
        qemu.kill('SIGKILL');
        resolve(ms);
      }
    });
    qemu.once('exit', (code) => reject(new Error(`raw qemu ended (${code}) before the pattern`)));
  });
}

const base = await mkdtemp(join(tmpdir(), 'cfs-boot-bench-'));
await chmod(base, 0o711);
const repos = new TempRepos();
try {
  // 1. The boot alone.
  const raw: number[] = [];
  const ours: number[] = [];
  const boot = parseValidationSpec({ boot: { success_pattern: PATTERN, memory_mib: MEMORY_MIB } })!.boot!;
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const side of round % 2 === 0 ? ['raw', 'ours'] : ['ours', 'raw']) {
      if (side === 'raw') {
        raw.push(await rawBoot());
        console.log(`round ${round + 1} raw qemu     ${seconds(raw.at(-1)!)}`);
      } else {
        const result = await runBootTest({
          files: { rootfs: fixture.rootfs, kernel: fixture.kernel, initrd: fixture.initrd },
          boot,
          network: 'none',
          mapping,
          groups: new ProcessGroups(),
          consoleLog: join(base, `console-${round}.log`),
          accelerator: choice,
        });
        if (!result.passed) throw new Error(`the boot test failed: ${result.reason}`);
        ours.push(result.durationMs);
        console.log(`round ${round + 1} boot test    ${seconds(result.durationMs)}`);
      }
    }
  }
  console.log(`boot alone (${choice.accelerator}): raw qemu median ${seconds(median(raw))}, boot test median ${seconds(median(ours))}; ratio ${(median(ours) / median(raw)).toFixed(3)}x`);

  // 2. The gate in a run.
  const store = new FsArtifactStore(join(base, 'store'));
  const rootfs = await store.put(`boot-images/${IMAGE}/rootfs`, createReadStream(fixture.rootfs));
  const layer = repos.with({ 'site.yml': ['- hosts: all', '  gather_facts: false', '  tasks:', '    - copy: {dest: /etc/motd, content: "customized by CFS\\n", mode: "0644"}', ''].join('\n') });
  const validation = { checks: [{ name: 'motd', command: 'grep -q "customized by CFS" /etc/motd' }], boot: { success_pattern: PATTERN, memory_mib: MEMORY_MIB } };
  const once = async (gated: boolean, session: string) => {
    const document = parseRunDocument({ ...localRunDocumentFor(session, { id: IMAGE, name: 'debian', rootfs }, { name: 'bench', ...layer }), ...(gated ? { validation } : {}) });
    const started = performance.now();
    const result = await runCustomization(document, { store, local: store, workspace: join(base, 'workspaces', session) });
    const total = performance.now() - started;
    if (result.outcome.status !== 'succeeded') throw new Error(`run ${session} failed: ${result.outcome.reason}`);
    await store.delete(`boot-images/result-${session}/rootfs`).catch(() => {});
    const tests = result.outcome.images[0]!.tests;
    return { total, checks: tests?.checks.reduce((sum, c) => sum + c.duration_ms, 0) ?? 0, boot: tests?.boot?.duration_ms ?? 0 };
  };
  const plain: number[] = [];
  const gated: Array<{ total: number; checks: number; boot: number }> = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const withGate of round % 2 === 0 ? [false, true] : [true, false]) {
      const sample = await once(withGate, `${withGate ? 'gated' : 'plain'}-${round}`);
      if (withGate) gated.push(sample);
      else plain.push(sample.total);
      console.log(`round ${round + 1} run ${withGate ? 'with gate   ' : 'without gate'} ${seconds(sample.total)}${withGate ? ` (checks ${seconds(sample.checks)}, boot ${seconds(sample.boot)})` : ''}`);
    }
  }
  const withGate = median(gated.map((g) => g.total));
  const without = median(plain);
  console.log(
    `run of one image: without gate median ${seconds(without)}, with gate median ${seconds(withGate)}; the gate adds ${seconds(withGate - without)} per image ` +
      `(checks ${seconds(median(gated.map((g) => g.checks)))}, boot ${seconds(median(gated.map((g) => g.boot)))}); ratio ${(withGate / without).toFixed(3)}x`,
  );
} finally {
  repos.disposeAll();
  await rm(base, { recursive: true, force: true });
}
