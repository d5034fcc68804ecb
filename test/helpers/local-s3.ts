import { S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';

/** An s3rver on a free local port and an SDK client that talks to it. */
export interface LocalS3 {
  client: S3Client;
  /** Destroys the client and stops the server (its files stay in the directory). */
  close(): Promise<void>;
}

/** Starts s3rver on 127.0.0.1 with `buckets`, keeping its objects under `directory`. */
export async function startLocalS3(directory: string, buckets: string[]): Promise<LocalS3> {
  const server = new S3rver({ port: 0, address: '127.0.0.1', directory, silent: true, configureBuckets: buckets.map((name) => ({ name, configs: [] })) });
  const { port } = (await server.run()) as { port: number };
  const client = new S3Client({
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    // s3rver predates the SDK's default CRC checksums.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    client,
    close: async () => {
      client.destroy();
      await server.close();
    },
  };
}
