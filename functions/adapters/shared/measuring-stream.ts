import { createHash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';

/** What a measuring stream saw pass through it. */
export interface Measurement {
  size: number;
  md5: string;
  sha256: string;
}

/**
 * A pass-through stream that measures size, md5 (as IMS and S3 ETags use) and sha256 of the
 * bytes flowing through it, so an upload is checksummed in the same pass that writes it.
 * `result()` is read once the stream has ended.
 */
export function measuringStream(): { stream: Transform; result(): Measurement } {
  const md5 = createHash('md5');
  const sha256 = createHash('sha256');
  let size = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      md5.update(chunk);
      sha256.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  let measured: Measurement | undefined;
  return { stream, result: () => (measured ??= { size, md5: md5.digest('hex'), sha256: sha256.digest('hex') }) };
}

/** A stream of the body whatever form it came in. */
export function toReadable(body: Readable | Buffer | string): Readable {
  return typeof body === 'string' || Buffer.isBuffer(body) ? Readable.from([Buffer.from(body)]) : body;
}
