import type { Worker } from 'node:worker_threads';
import { HttpResponse, type HttpHandler, type HttpRequest } from '@smithy/core/protocols';

interface Pending {
  resolve: (value: { response: HttpResponse }) => void;
  reject: (error: Error) => void;
}

type WorkerReply =
  | { type: 'response'; id: number; statusCode: number; headers: Record<string, string>; body: string }
  | { type: 'failure'; id: number; message: string };

/**
 * An SDK HTTP handler that posts each DynamoDB request to the database worker thread
 * (dynalite-worker.mjs) and resolves with its answer: the same DynamoDB JSON protocol, the
 * same dynalite code answering it, without a socket on either end. If the worker exits,
 * requests in flight and later ones fail like a refused connection (a transient error).
 */
export class WorkerDynamoHandler implements HttpHandler {
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private exited: string | undefined;

  constructor(private readonly worker: Worker) {
    worker.on('message', (reply: WorkerReply | { type: string }) => this.settle(reply));
    worker.on('exit', (code) => this.failAll(`the database worker exited with code ${code}`));
    worker.on('error', (error) => this.failAll(`the database worker failed: ${error.message}`));
  }

  handle(request: HttpRequest): Promise<{ response: HttpResponse }> {
    if (this.exited) return Promise.reject(new Error(`ECONNREFUSED: ${this.exited}`));
    const id = this.nextId++;
    const body: unknown = request.body;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({
        type: 'request',
        id,
        method: request.method,
        path: request.path,
        headers: lowerCaseKeys(request.headers),
        body: typeof body === 'string' ? body : body instanceof Uint8Array ? utf8(body) : '',
      });
    });
  }

  private settle(reply: WorkerReply | { type: string }): void {
    if (reply.type !== 'response' && reply.type !== 'failure') return;
    const { id } = reply as WorkerReply;
    const waiting = this.pending.get(id);
    if (!waiting) return;
    this.pending.delete(id);
    if (reply.type === 'failure') waiting.reject(new Error(`the database worker failed a request: ${(reply as { message: string }).message}`));
    else {
      const { statusCode, headers, body } = reply as Extract<WorkerReply, { type: 'response' }>;
      waiting.resolve({ response: new HttpResponse({ statusCode, headers, body: Buffer.from(body, 'utf8') }) });
    }
  }

  private failAll(reason: string): void {
    this.exited ??= reason;
    for (const { reject } of this.pending.values()) reject(new Error(`ECONNRESET: ${reason}`));
    this.pending.clear();
  }

  updateHttpClientConfig(): void {}

  httpHandlerConfigs(): Record<string, never> {
    return {};
  }

  destroy(): void {}
}

/** The bytes as text, read through a view: the SDK's body type warns when its string methods are used. */
function utf8(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}

function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name.toLowerCase()] = value;
  return out;
}
