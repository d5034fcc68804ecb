// The embedded database in a worker thread: dynalite and its leveldb store, answering the
// DynamoDB JSON protocol both to the server's SDK clients (requests posted from the main
// thread, see dynalite.ts) and over loopback HTTP to other processes. Most of a session
// create's CPU is dynalite's, so here it runs beside the API instead of in its turn.
//
// Plain JavaScript: a worker is started from a file, and this one must start the same way
// from the TypeScript sources (tsx, vitest) and from the bundle in dist/.
import { EventEmitter } from 'node:events';
import { parentPort, workerData } from 'node:worker_threads';
import dynalite from 'dynalite';

const server = dynalite({ path: workerData.path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
const listener = server.listeners('request')[0];

/**
 * Gives one request to dynalite's request listener as an HTTP server would, minus the socket:
 * it reads `method`, `url`, `headers` and the `data`/`end` events, and answers with
 * `statusCode`, `setHeader` and `end`.
 */
function answer({ id, method, path, headers, body }) {
  const incoming = Object.assign(new EventEmitter(), { method, url: path, headers });
  const responseHeaders = {};
  const outgoing = {
    statusCode: 200,
    setHeader(name, value) {
      responseHeaders[name.toLowerCase()] = String(value);
    },
    end(text) {
      parentPort.postMessage({ type: 'response', id, statusCode: outgoing.statusCode, headers: responseHeaders, body: text ?? '' });
    },
  };
  try {
    listener(incoming, outgoing);
    if (body) incoming.emit('data', Buffer.from(body));
    incoming.emit('end');
  } catch (error) {
    parentPort.postMessage({ type: 'failure', id, message: String(error?.stack ?? error) });
  }
}

parentPort.on('message', (message) => {
  if (message.type === 'request') answer(message);
  else if (message.type === 'close') server.close(() => parentPort.postMessage({ type: 'closed' }));
});

server.once('error', (error) => parentPort.postMessage({ type: 'error', message: String(error?.message ?? error) }));
server.listen(0, '127.0.0.1', () => parentPort.postMessage({ type: 'ready', port: server.address().port }));
