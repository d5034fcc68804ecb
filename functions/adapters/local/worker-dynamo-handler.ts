import type { Worker } from 'node:worker_threads';
import { HttpResponse, type HttpHandler, type HttpRequest } from '@smithy/core/protocols';

interface Pending {
  resolve: (value: { response: HttpResponse }) => void;
  reject: (error: Error) => void;
}

/** `[id, status, content type, body]`, or `[id, -1, reason]` when dynalite threw (dynalite-worker.mjs). */
type WorkerReply = [number, number, string, string?];

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
    worker.on('message', (reply: WorkerReply | { type: string }) => {
      if (Array.isArray(reply)) this.settle(reply);
    });
    worker.on('exit', (code) => this.failAll(`the database worker exited with code ${code}`));
    worker.on('error', (error) => this.failAll(`the database worker failed: ${error.message}`));
  }

  handle(request: HttpRequest): Promise<{ response: HttpResponse }> {
    if (this.exited) return Promise.reject(new Error(`ECONNREFUSED: ${this.exited}`));
    const id = this.nextId++;
    const body: unknown = request.body;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // Every DynamoDB operation is a POST of JSON named by its target header: that and the body are all dynalite needs.
      this.worker.postMessage([id, targetOf(request.headers), typeof body === 'string' ? body : body instanceof Uint8Array ? utf8(body) : '']);
    });
  }

  private settle([id, statusCode, contentTypeOrReason, body]: WorkerReply): void {
    const waiting = this.pending.get(id);
    if (!waiting) return;
    this.pending.delete(id);
    if (statusCode < 0) waiting.reject(new Error(`the database worker failed a request: ${contentTypeOrReason}`));
    else waiting.resolve({ response: new HttpResponse({ statusCode, headers: { 'content-type': contentTypeOrReason }, body: Buffer.from(body ?? '', 'utf8') }) });
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

function targetOf(headers: Record<string, string>): string {
  for (const [name, value] of Object.entries(headers)) if (name.toLowerCase() === 'x-amz-target') return value;
  return '';
}
