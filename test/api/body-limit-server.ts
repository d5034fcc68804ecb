// The embedded runtime in a process of its own, for tests that read the server's memory from
// /proc/<pid>/status: `node --import tsx test/api/body-limit-server.ts <data dir>`. Prints its API
// token and `listening on <url>` once it serves, and stops on SIGTERM.
import { startEmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { FakeWorkflow } from '../helpers/cfs-fakes.ts';

const dataDir = process.argv[2];
if (!dataDir) throw new Error('usage: body-limit-server.ts <data dir>');
// No runner: what is under test is how the API reads request bodies.
const runtime = await startEmbeddedRuntime({ dataDir, port: 0, overrides: { workflow: new FakeWorkflow() } });
console.log(`token ${runtime.apiToken}`);
console.log(`listening on ${runtime.url}`);
process.once('SIGTERM', () => void runtime.close().then(() => process.exit(0)));
