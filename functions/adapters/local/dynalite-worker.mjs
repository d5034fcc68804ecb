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

// dynalite checks that a request carries a SigV4-shaped Authorization header, never its signature.
const AUTHORIZATION = 'AWS4-HMAC-SHA256 Credential=local/20200101/local/dynamodb/aws4_request, SignedHeaders=host, Signature=local';

/**
 * Gives one request, `[id, operation target, JSON body]`, to dynalite's request listener as an
 * HTTP server would, minus the socket: it reads `method`, `url`, `headers` and the `data`/`end`
 * events, and answers with `statusCode`, `setHeader` and `end`. The answer goes back as
 * `[id, status, content type, body]`, or `[id, -1, reason]`: arrays of strings are what the
 * thread boundary copies fastest.
 */
function answer([id, target, body]) {
  const headers = { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': target, authorization: AUTHORIZATION, 'x-amz-date': '20200101T000000Z' };
  const incoming = Object.assign(new EventEmitter(), { method: 'POST', url: '/', headers });
  let contentType = 'application/x-amz-json-1.0';
  const outgoing = {
    statusCode: 200,
    setHeader(name, value) {
      if (name.toLowerCase() === 'content-type') contentType = String(value);
    },
    end(text) {
      parentPort.postMessage([id, outgoing.statusCode, contentType, text ?? '']);
    },
  };
  try {
    listener(incoming, outgoing);
    if (body) incoming.emit('data', Buffer.from(body));
    incoming.emit('end');
  } catch (error) {
    parentPort.postMessage([id, -1, String(error?.stack ?? error)]);
  }
}

parentPort.on('message', (message) => {
  if (Array.isArray(message)) answer(message);
  else if (message.type === 'close') server.close(() => parentPort.postMessage({ type: 'closed' }));
});

server.once('error', (error) => parentPort.postMessage({ type: 'error', message: String(error?.message ?? error) }));
server.listen(0, '127.0.0.1', () => parentPort.postMessage({ type: 'ready', port: server.address().port }));
