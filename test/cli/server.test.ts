import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempRepo, type TempRepo } from '../helpers/git-repo.ts';
import { cliEnv } from '../helpers/api-token.ts';
import { BIN, cfsBin, ensureBuilt, spawnServer, startServer, tempDataDir } from './cli-harness.ts';

const IMG = '3fa85f64-5717-4562-b3fc-2c963f66afa6';

describe('the CFS docs example through the real bin against a running server on a fresh data directory', () => {
  let data: ReturnType<typeof tempDataDir>;
  let repo: TempRepo;
  let server: Awaited<ReturnType<typeof startServer>>;
  let env: Record<string, string>;
  beforeAll(async () => {
    ensureBuilt();
    data = tempDataDir();
    repo = makeTempRepo();
    repo.commit('main', 'site.yml', '- hosts: all\n  tasks: []\n');
    server = await startServer(data.dir);
    env = cliEnv(server.runtime);
    const file = join(data.dir, 'configurations-example.json');
    writeFileSync(file, JSON.stringify({ layers: [{ name: 'base', clone_url: repo.url, playbook: 'site.yml', branch: 'main' }] }));
    const update = await cfsBin(env, 'configurations', 'update', 'configurations-example', '--file', file);
    expect(update.code).toBe(0);
  });
  afterAll(async () => {
    await server.runtime.close();
    data.dispose();
    repo.dispose();
  });

  it('creates the session with groups, image map and pending status, and describes it', async () => {
    // Act
    const created = await cfsBin(env, 'sessions', 'create', '--name', 'example', '--configuration-name', 'configurations-example', '--target-definition', 'image', '--format', 'json',
      '--target-group', 'Application', IMG, '--target-group', 'Application_UAN', IMG, '--image-map', IMG, 'my-result');
    const described = await cfsBin(env, 'sessions', 'describe', 'example', '--format', 'json');
    // Assert
    expect(created.code).toBe(0);
    const session = JSON.parse(created.out);
    expect(session.target.groups).toEqual([{ name: 'Application', members: [IMG] }, { name: 'Application_UAN', members: [IMG] }]);
    expect(session.target.image_map).toEqual([{ source_id: IMG, result_name: 'my-result' }]);
    expect(session.status.session.status).toBe('pending');
    expect(JSON.parse(described.out)).toEqual(session);
  });

  it('answers a second create with the same name with a 409 as one Error line', async () => {
    // Act
    const res = await cfsBin(env, 'sessions', 'create', '--name', 'example', '--configuration-name', 'configurations-example', '--target-group', 'Application', IMG);
    // Assert
    expect(res.code).toBe(2);
    expect(res.err).toBe("Error: Conflict: session 'example' already exists\n");
  });

  it('answers a bad name with a 400 naming the field', async () => {
    // Act
    const res = await cfsBin(env, 'sessions', 'create', '--name', 'Example_Session', '--configuration-name', 'configurations-example', '--target-group', 'Application', IMG);
    // Assert
    expect(res.code).toBe(2);
    expect(res.err).toMatch(/^Error: Bad Request: name: must be a Kubernetes name/);
  });

  it('answers `cfs sessions describe` in well under a second of CPU', async () => {
    // Arrange: the child reports its own CPU time at exit, which a busy machine disturbs far less than wall time.
    const report = "process.on('exit',()=>{const u=process.cpuUsage();process.stderr.write('cpu-ms '+Math.round((u.user+u.system)/1000)+'\\n')})";
    const run = () =>
      new Promise<{ wall: number; cpu: number; out: string }>((resolve) => {
        const started = performance.now();
        execFile(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(report)}`, BIN, 'sessions', 'describe', 'timing'], { env: { ...process.env, ...env } }, (_e, out, err) => {
          resolve({ wall: performance.now() - started, cpu: Number(/cpu-ms (\d+)/.exec(err)?.[1] ?? NaN), out });
        });
      });
    await cfsBin(env, 'sessions', 'create', '--name', 'timing', '--configuration-name', 'configurations-example', '--target-group', 'Compute', IMG);
    // Act: the best of three.
    const runs = [await run(), await run(), await run()];
    // Assert
    console.log(`cfs sessions describe: wall ${runs.map((r) => Math.round(r.wall)).join(', ')} ms; cpu ${runs.map((r) => r.cpu).join(', ')} ms`);
    expect(runs[0]!.out).toContain('Session timing: pending');
    expect(Math.min(...runs.map((r) => r.cpu))).toBeLessThan(1000);
  });

  it('keeps sessions and configurations across a restart on the same data directory', async () => {
    // Arrange
    await server.runtime.close();
    // Act: reopened at once, so the database lock was released.
    server = await startServer(data.dir);
    env = cliEnv(server.runtime);
    const session = await cfsBin(env, 'sessions', 'describe', 'example', '--format', 'json');
    const configuration = await cfsBin(env, 'configurations', 'describe', 'configurations-example', '--format', 'json');
    // Assert
    expect(JSON.parse(session.out).target.image_map).toEqual([{ source_id: IMG, result_name: 'my-result' }]);
    expect(JSON.parse(configuration.out).layers[0].name).toBe('base');
  });
});

describe('`cfs server` as a process', () => {
  let data: ReturnType<typeof tempDataDir>;
  let repo: TempRepo;
  beforeAll(() => {
    ensureBuilt();
    data = tempDataDir();
    repo = makeTempRepo();
    repo.commit('main', 'site.yml', '- hosts: all\n  tasks: []\n');
  });
  afterAll(() => {
    data.dispose();
    repo.dispose();
  });

  it('creates its table on a fresh data directory, shuts down cleanly on SIGTERM and SIGINT, and keeps the data', async () => {
    // Arrange
    const first = await spawnServer(data.dir);
    const file = join(data.dir, 'c.json');
    writeFileSync(file, JSON.stringify({ layers: [{ clone_url: repo.url, playbook: 'site.yml', branch: 'main' }] }));
    const update = await cfsBin(first.env, 'configurations', 'update', 'kept', '--file', file);
    // Act
    first.child.kill('SIGTERM');
    const firstCode = await first.exited;
    const second = await spawnServer(data.dir);
    const described = await cfsBin(second.env, 'configurations', 'describe', 'kept', '--format', 'json');
    second.child.kill('SIGINT');
    const secondCode = await second.exited;
    // Assert
    expect(update.code).toBe(0);
    expect(firstCode).toBe(0);
    expect(first.output()).toContain('cfs server: stopped');
    expect(JSON.parse(described.out).layers[0].branch).toBe('main');
    expect(secondCode).toBe(0);
  });

  it('serves the CFS docs example with its real workflow, which waits pending for the images, and keeps the session over a restart', async () => {
    // Arrange
    const dir = join(data.dir, 'docs');
    const first = await spawnServer(dir);
    const file = join(data.dir, 'docs.json');
    writeFileSync(file, JSON.stringify({ layers: [{ name: 'base', clone_url: repo.url, playbook: 'site.yml', branch: 'main' }] }));
    await cfsBin(first.env, 'configurations', 'update', 'configurations-example', '--file', file);
    // Act
    const created = await cfsBin(first.env, 'sessions', 'create', '--name', 'example', '--configuration-name', 'configurations-example', '--target-definition', 'image', '--format', 'json',
      '--target-group', 'Application', IMG, '--target-group', 'Application_UAN', IMG, '--image-map', IMG, 'my-result');
    const duplicate = await cfsBin(first.env, 'sessions', 'create', '--name', 'example', '--configuration-name', 'configurations-example', '--target-group', 'Application', IMG);
    first.child.kill('SIGTERM');
    const firstCode = await first.exited;
    const second = await spawnServer(dir);
    const described = await cfsBin(second.env, 'sessions', 'describe', 'example', '--format', 'json');
    second.child.kill('SIGTERM');
    const secondCode = await second.exited;
    // Assert
    expect(created.code).toBe(0);
    const session = JSON.parse(created.out);
    expect(session.target.groups.map((g: { name: string }) => g.name)).toEqual(['Application', 'Application_UAN']);
    expect(session.target.image_map).toEqual([{ source_id: IMG, result_name: 'my-result' }]);
    expect(session.status.session.status).toBe('pending');
    expect(duplicate.err).toBe("Error: Conflict: session 'example' already exists\n");
    // The record outlives the restart; its status is the workflow's to decide (a shutdown interrupts the wait).
    expect(JSON.parse(described.out).target).toEqual(session.target);
    expect(JSON.parse(described.out).status.layers).toEqual(session.status.layers);
    expect([firstCode, secondCode]).toEqual([0, 0]);
  });

  it('refuses run limits out of range in one line, before touching the data directory', async () => {
    // Arrange
    const dir = join(data.dir, 'never-created');
    // Act
    const budget = await cfsBin({}, 'server', '--port', '0', '--data-dir', dir, '--runner-timeout', '0');
    const runs = await cfsBin({}, 'server', '--port', '0', '--data-dir', dir, '--max-concurrent-runs', 'two');
    const grace = await cfsBin({}, 'server', '--port', '0', '--data-dir', dir, '--runner-stop-grace', '7200');
    // Assert
    expect([budget.code, runs.code, grace.code]).toEqual([1, 1, 1]);
    expect(budget.err).toBe("Error: --runner-timeout takes a whole number from 1 to 86000, not '0'\n");
    expect(runs.err).toBe("Error: --max-concurrent-runs takes a whole number from 1 to 64, not 'two'\n");
    expect(grace.err).toBe("Error: --runner-stop-grace takes a whole number from 1 to 3600, not '7200'\n");
    expect(existsSync(dir)).toBe(false);
  });

  it('refuses a second server on a data directory in use, with a clear message', async () => {
    // Arrange
    const running = await spawnServer(data.dir);
    // Act
    const second = await cfsBin({}, 'server', '--port', '0', '--data-dir', data.dir);
    running.child.kill('SIGTERM');
    await running.exited;
    // Assert
    expect(second.code).toBe(1);
    expect(second.err).toContain(`Error: the data directory ${data.dir} is in use by another cfs server (pid ${running.child.pid})`);
  });
});
