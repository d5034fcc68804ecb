import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';

/** A CA and a certificate for 127.0.0.1 signed by it (openssl), so clients must be given the CA. */
function makeCertificates(dir: string): { caPem: string; cert: Buffer; key: Buffer } {
  const file = (f: string) => join(dir, f);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '2',
    '-subj', '/CN=cfs sources test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', file('key.pem'), '-out', file('csr.pem'), '-subj', '/CN=127.0.0.1');
  writeFileSync(file('ext.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  openssl('x509', '-req', '-in', file('csr.pem'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-out', file('cert.pem'), '-days', '2', '-extfile', file('ext.cnf'));
  return { caPem: readFileSync(file('ca.pem'), 'utf8'), cert: readFileSync(file('cert.pem')), key: readFileSync(file('key.pem')) };
}

/**
 * Git repositories over HTTPS (git's dumb protocol: the files of `.git` as they are) behind
 * HTTP Basic authentication, with a certificate from a private CA: what a CFS source with
 * credentials and a CA bundle points at. It counts the requests that came with the right login.
 */
export class GitBasicAuthServer {
  private server: Server | undefined;
  private readonly repos = new Map<string, string>();
  private readonly dir = mkdtempSync(join(tmpdir(), 'cfs-git-auth-'));
  private readonly tls: { cert: Buffer; key: Buffer };
  readonly caPem: string;
  url = '';
  /** Requests answered with content (the login was right). */
  authorized = 0;
  /** Requests refused with 401. */
  refused = 0;

  constructor(
    readonly username: string,
    readonly password: string,
  ) {
    const files = makeCertificates(this.dir);
    this.caPem = files.caPem;
    this.tls = { cert: files.cert, key: files.key };
  }

  async start(): Promise<void> {
    const expected = `Basic ${Buffer.from(`${this.username}:${this.password}`).toString('base64')}`;
    this.server = createServer(this.tls, (request, response) => {
      if (request.headers.authorization !== expected) {
        this.refused += 1;
        response.writeHead(401, { 'www-authenticate': 'Basic realm="git"', 'content-type': 'text/plain' }).end('login required\n');
        return;
      }
      const url = new URL(request.url ?? '/', 'https://git');
      const [, name, ...rest] = url.pathname.split('/');
      const gitDir = this.repos.get(name ?? '');
      const path = gitDir ? normalize(join(gitDir, ...rest)) : '';
      if (!gitDir || !path.startsWith(gitDir) || !existsSync(path) || !statSync(path).isFile()) {
        response.writeHead(404).end();
        return;
      }
      this.authorized += 1;
      response.writeHead(200, { 'content-type': 'application/octet-stream' });
      createReadStream(path).pipe(response);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Serves a working repository's .git at `<url>/<name>.git`; call again after new commits (it refreshes the dumb refs list). */
  serve(name: string, workingDir: string): string {
    execFileSync('git', ['-C', workingDir, 'update-server-info']);
    this.repos.set(`${name}.git`, join(workingDir, '.git'));
    return `${this.url}/${name}.git`;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
