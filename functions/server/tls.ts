import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';

/** A certificate and its key, as PEM files (`--tls-cert`, `--tls-key`, or the self-signed pair). */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/** The PEM contents of `files`, read now (at start and on every SIGHUP), with a one-line error naming the file that fails. */
export function readTlsFiles(files: TlsFiles): { cert: Buffer; key: Buffer } {
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new Error(`cannot read the TLS ${what} ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
  };
  return { cert: read(files.certFile, 'certificate'), key: read(files.keyFile, 'key') };
}

/** The subjectAltName entry of a host: an IP address or a DNS name. */
function altName(host: string): string {
  const bare = host.replace(/^\[|\]$/g, '');
  return isIP(bare) ? `IP:${bare}` : `DNS:${bare}`;
}

/** True when `certFile` exists, names exactly `host` and is valid for another day. */
function stillGood(certFile: string, host: string): boolean {
  if (!existsSync(certFile)) return false;
  try {
    const cert = new X509Certificate(readFileSync(certFile));
    const names = (cert.subjectAltName ?? '').split(', ').map((n) => n.replace(/^IP Address:/, 'IP:'));
    return names.includes(altName(host)) && Date.parse(cert.validTo) > Date.now() + 24 * 3600 * 1000;
  } catch {
    return false;
  }
}

/**
 * A self-signed certificate for one host, made with openssl and kept in `dir` (`cert.pem`,
 * `key.pem` with mode 0600); reused on the next start while it names the same host and has a day
 * left, made anew otherwise. Clients trust it by its file (CFS_CA_BUNDLE, curl --cacert,
 * REQUESTS_CA_BUNDLE for cray).
 */
export function ensureSelfSignedCertificate(dir: string, host: string): TlsFiles {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files = { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') };
  if (stillGood(files.certFile, host)) return files;
  const bare = host.replace(/^\[|\]$/g, '');
  // A P-256 key and a leaf that is its own trust anchor, for serverAuth on this one name only.
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', files.keyFile, '-out', files.certFile, '-days', '397',
    '-subj', `/CN=${bare.length <= 64 ? bare : 'cfs server'}`,
    '-addext', `subjectAltName=${altName(host)}`,
    '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0',
    '-addext', 'keyUsage=critical,digitalSignature,keyCertSign',
    '-addext', 'extendedKeyUsage=serverAuth',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  chmodSync(files.keyFile, 0o600);
  return files;
}
