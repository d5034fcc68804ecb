import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where the embedded server's artifact store keeps an `s3://bucket/key` link under `dataDir`. */
export function storedPath(dataDir: string, link: string): string {
  return join(dataDir, 'artifacts', ...link.replace(/^s3:\/\//, '').split('/'));
}

/** A file inside a registered image's rootfs, read straight from its stored squashfs with unsquashfs. */
export function fileInImage(dataDir: string, image: { link?: { path: string } | null }, path: string): string {
  const manifest = JSON.parse(readFileSync(storedPath(dataDir, image.link!.path), 'utf8')) as { artifacts: { type: string; link: { path: string } }[] };
  const rootfs = manifest.artifacts.find((a) => a.type.endsWith('rootfs.squashfs'))!;
  return execFileSync('unsquashfs', ['-cat', storedPath(dataDir, rootfs.link.path), path], { encoding: 'utf8' });
}
