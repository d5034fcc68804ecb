/**
 * `npm run demo`: the CFS docs' image customization session, for real, on one machine.
 * Starts the embedded stack in-process on a temporary data directory, builds and imports two
 * sample images, makes the example layer (examples/layers/site) into a git repository, and runs
 * a session over two groups with an image map through the real `cfs` CLI. It then proves the
 * change by reading the files the playbook wrote out of each result image's rootfs.
 * Exits non-zero if anything failed.
 */
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { SessionRecord } from '../functions/core/model/session.ts';
import { startEmbeddedRuntime } from '../functions/server/embedded-runtime.ts';

const exec = promisify(execFile);
const root = join(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'cfs-demo-'));

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Runs the real bin against `server`; pointed at its data directory, the CLI finds the server's token there. */
async function cfs(server: { url: string; dataDir: string }, args: string[]): Promise<string> {
  say(`$ cfs ${args.join(' ')}`);
  try {
    const { stdout } = await exec(process.execPath, [join(root, 'bin', 'cfs.mjs'), ...args], { env: { ...process.env, CFS_API_URL: server.url, CFS_DATA_DIR: server.dataDir }, maxBuffer: 1 << 24 });
    return stdout;
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`cfs ${args[0]} ${args[1]} failed: ${(e.stderr || e.message).trim()}`);
  }
}

function exampleRepo(): string {
  const dir = join(work, 'layers', 'site');
  cpSync(join(root, 'examples', 'layers', 'site'), dir, { recursive: true });
  const env = { ...process.env, GIT_AUTHOR_NAME: 'demo', GIT_AUTHOR_EMAIL: 'demo@example', GIT_COMMITTER_NAME: 'demo', GIT_COMMITTER_EMAIL: 'demo@example' };
  for (const args of [['init', '-q', '-b', 'main'], ['add', '-A'], ['commit', '-q', '-m', 'example layer']]) execFileSync('git', args, { cwd: dir, env });
  return `file://${dir}`;
}

/** Prints each step as it starts and ends, until the session completes (or 10 minutes pass). */
async function follow(server: { url: string; apiToken: string }, name: string): Promise<SessionRecord> {
  const seen = new Set<string>();
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    const session = (await (await fetch(`${server.url}/apis/cfs/v3/sessions/${name}`, { headers: { Authorization: `Bearer ${server.apiToken}` } })).json()) as SessionRecord;
    for (const step of session.status.steps ?? []) {
      const key = `${step.name}/${step.image_id ?? ''}/${step.state}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const what = `${step.name}${step.image_id ? ` ${step.image_id}` : ''}`;
      say(`  [${new Date().toISOString().slice(11, 19)}] ${what}: ${step.state}`);
    }
    if (session.status.message && !seen.has(session.status.message)) {
      seen.add(session.status.message);
      say(`  ${session.status.message}`);
    }
    if (session.status.session.status === 'complete') return session;
    if (Date.now() > deadline) throw new Error(`session ${name} did not complete within 10 minutes`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function main(): Promise<void> {
  const runtime = await startEmbeddedRuntime({ dataDir: join(work, 'data'), port: 0 });
  say(`embedded CFS on ${runtime.url} (data in ${runtime.dataDir})`);
  try {
    const application = JSON.parse(await cfs(runtime, ['images', 'build-sample', '--name', 'application-base', '--format', 'json'])) as { id: string };
    const uan = JSON.parse(await cfs(runtime, ['images', 'build-sample', '--name', 'uan-base', '--format', 'json'])) as { id: string };
    say(`sample images: application-base ${application.id}, uan-base ${uan.id}`);

    const configurationFile = join(work, 'configuration.json');
    writeFileSync(configurationFile, JSON.stringify({ layers: [{ name: 'site', clone_url: exampleRepo(), branch: 'main', playbook: 'site.yml' }] }, null, 2));
    await cfs(runtime, ['configurations', 'update', 'configurations-example', '--file', configurationFile, '--format', 'json']);

    await cfs(runtime, [
      'sessions', 'create', '--name', 'example', '--configuration-name', 'configurations-example', '--target-definition', 'image', '--format', 'json',
      '--target-group', 'Application', application.id,
      '--target-group', 'Application_UAN', uan.id,
      '--image-map', application.id, 'application-customized',
    ]);
    const session = await follow(runtime, 'example');

    const described = await cfs(runtime, ['sessions', 'describe', 'example', '--format', 'json']);
    say(described.trim());
    if (session.status.session.succeeded !== 'true') throw new Error(`the session failed: ${session.status.failure?.reason ?? 'no reason recorded'}`);

    for (const artifact of session.status.artifacts) {
      const rootfs = join(work, `${artifact.result_id}.squashfs`);
      await cfs(runtime, ['images', 'download', artifact.result_id, '-o', rootfs]);
      const stamp = execFileSync('unsquashfs', ['-cat', rootfs, 'etc/cfs-demo.txt'], { encoding: 'utf8' });
      const motd = execFileSync('unsquashfs', ['-cat', rootfs, 'etc/motd'], { encoding: 'utf8' });
      say(`result ${artifact.result_id} (from ${artifact.image_id}):`);
      say(`  /etc/cfs-demo.txt: ${stamp.trim()}`);
      say(`  /etc/motd: ${motd.trim()}`);
      if (!stamp.includes(artifact.image_id)) throw new Error(`result ${artifact.result_id} lacks the layer's change`);
      const expected = artifact.image_id === application.id ? 'Application node image' : 'User access node image';
      if (!motd.includes(expected)) throw new Error(`result ${artifact.result_id} lacks its group's change`);
    }
    say('demo succeeded: both images were customized by the example layer');
  } finally {
    await runtime.close();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
