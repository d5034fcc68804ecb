import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';

/** A CA and a server certificate for 127.0.0.1 signed by it, made with openssl. */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const file = (f: string) => join(dir, f);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '2', '-subj', '/CN=cfs aws-local git CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', file('key.pem'), '-out', file('csr.pem'), '-subj', '/CN=127.0.0.1');
  writeFileSync(file('ext.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  openssl('x509', '-req', '-in', file('csr.pem'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-out', file('cert.pem'), '-days', '2', '-extfile', file('ext.cnf'));
  return { ca: file('ca.pem'), cert: file('cert.pem'), key: file('key.pem') };
}

/**
 * Layers' repositories over HTTPS (git's dumb protocol: the repository's files served as they
 * are), since the deployed stack allows only https clone URLs. Its CA goes to the functions and
 * the runner as NODE_EXTRA_CA_CERTS and GIT_SSL_CAINFO.
 */
export class GitHttps {
  private server: Server | undefined;
  private readonly repos = new Map<string, string>();
  url = '';
  readonly ca: string;
  private readonly tls: { cert: Buffer; key: Buffer };

  constructor(certificateDir: string) {
    const files = makeCertificates(certificateDir);
    this.ca = files.ca;
    this.tls = { cert: readFileSync(files.cert), key: readFileSync(files.key) };
  }

  async start(): Promise<void> {
    this.server = createServer(this.tls, (request, response) => {
      const url = new URL(request.url ?? '/', 'https://git');
      const [, name, ...rest] = url.pathname.split('/');
      const gitDir = this.repos.get(name ?? '');
      const path = gitDir ? normalize(join(gitDir, ...rest)) : '';
      if (!gitDir || !path.startsWith(gitDir) || !existsSync(path) || !statSync(path).isFile()) {
        response.writeHead(404).end();
        return;
      }
      response.writeHead(200, { 'content-type': 'application/octet-stream' });
      createReadStream(path).pipe(response);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Serves a working repository's .git at https://127.0.0.1:PORT/<name>.git (its refs listed for dumb clients). */
  serve(name: string, workingDir: string): string {
    execFileSync('git', ['-C', workingDir, 'update-server-info']);
    this.repos.set(`${name}.git`, join(workingDir, '.git'));
    return `${this.url}/${name}.git`;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
