import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/** How long a closing connection keeps reading (and discarding) what the client still sends. */
export const LINGER_MS = 2_000;

const lingering = new WeakSet<Socket>();

/**
 * A staged close (RFC 9112, section 9.6) for answers that close the connection before the request
 * body was read, such as a 413 on a declared 400 MB upload. Node closes such a socket as soon as
 * the answer is written; the bytes the client is still sending then meet a closed socket, the
 * client's kernel gets a reset, and the client may see EPIPE or ECONNRESET instead of the 413.
 * Here the socket sends its FIN after the answer but keeps reading (the body is discarded, never
 * held) until the client closes or LINGER_MS passes, so the client reads the answer and stops.
 */
export function lingerBeforeClosing(server: Server): void {
  server.on('request', (request) => {
    const socket = request.socket;
    if (lingering.has(socket)) return;
    lingering.add(socket);
    socket.destroySoon = function lingeringClose(this: Socket) {
      if (this.destroyed) return;
      const timer = setTimeout(() => this.destroy(), LINGER_MS);
      timer.unref();
      this.once('close', () => clearTimeout(timer));
      // The client closing its side ends the wait early.
      this.once('end', () => this.destroy());
      this.end();
    };
  });
}
