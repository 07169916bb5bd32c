// A real, private PostgreSQL server for tests (Debian's `postgresql` package, installed by .ci/run): initdb in a
// temp dir, `pg_ctl start` on a free loopback port with its socket in that dir, a password-protected role and
// database for Tessera, optionally TLS with a CA and server certificate made by openssl. pg_ctl daemonises the
// server, so nothing long-running is spawned from here (execFile runs short commands only). Every wait is bounded.
// A test file that only needs a database takes one on the run's shared server instead (postgres-database.ts); a
// private server is for the tests that stop, kill or reconfigure it.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

export interface PostgresServer {
  /** postgres://tessera:<password>@127.0.0.1:<port>/tessera (with sslmode/sslrootcert in TLS mode). */
  readonly url: string;
  /** The same server as the superuser `postgres`, for test-side inspection and sabotage. */
  readonly adminUrl: string;
  readonly port: number;
  /** The CA that signed the server certificate (TLS mode only). */
  readonly caFile: string | undefined;
  /** The server log (for failure messages). */
  readonly logFile: string;
  /** Clean shutdown (pg_ctl stop -m fast); the data stays for restart(). */
  stop(): Promise<void>;
  /** The database lost at once: SIGKILL to the postmaster and every backend (by pid). */
  kill(): Promise<void>;
  /** Starts the stopped or killed server again on the same port. */
  restart(): Promise<void>;
  /** Stops the server and removes its directory. */
  destroy(): Promise<void>;
}

export interface PostgresServerOptions {
  /** Serve TLS (ssl=on) with a server certificate for 127.0.0.1/localhost signed by a fresh CA. */
  readonly tls?: boolean;
}

const STEP_TIMEOUT_MS = 60_000;
const PASSWORD = "tessera-test-pw-'q\"";

function sh(cmd: string, args: readonly string[], opts: { asPostgres?: boolean; cwd?: string } = {}): Promise<string> {
  const asRoot = process.getuid?.() === 0;
  const [c, a] = opts.asPostgres && asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, [...args]];
  return new Promise((resolve, reject) => {
    execFile(c, a, { timeout: STEP_TIMEOUT_MS, cwd: opts.cwd, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** The newest installed server's bin dir (/usr/lib/postgresql/<major>/bin). */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root) ? readdirSync(root).filter((d) => /^\d+$/.test(d) && existsSync(join(root, d, 'bin', 'pg_ctl'))) : [];
  if (majors.length === 0) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: install Debian\'s "postgresql" package (.ci/run does)');
  return join(root, majors.sort((x, y) => Number(y) - Number(x))[0]!, 'bin');
}

async function makeTlsFiles(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const f = (n: string) => join(dir, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await sh('openssl', ['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=tessera-test-pg-ca']);
  await sh('openssl', ['req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost']);
  await writeFile(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n');
  await sh('openssl', ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('server.ext')]);
  await chmod(f('server.key'), 0o600);
  return { ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key') };
}

const live = new Set<() => void>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A test file that dies before afterAll must not leave a server behind: stop every one still running, by its data dir.
  process.on('exit', () => {
    for (const stopNow of live) stopNow();
  });
}

export async function startPostgres(opts: PostgresServerOptions = {}): Promise<PostgresServer> {
  const bin = postgresBinDir();
  const asRoot = process.getuid?.() === 0;
  const dir = await mkdtemp(join(tmpdir(), 'tessera-pg-'));
  const data = join(dir, 'data');
  const sock = join(dir, 'sock');
  const logFile = join(dir, 'server.log');
  await mkdir(sock);
  const tls = opts.tls ? await makeTlsFiles(dir) : undefined;
  await writeFile(join(dir, 'pw'), `${PASSWORD}\n`);
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    for (const p of [dir, sock, join(dir, 'pw'), ...(tls ? [tls.key, tls.cert, tls.ca] : [])]) await chown(p, uid, gid);
  }
  await sh(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--pwfile', join(dir, 'pw'), '-A', 'scram-sha-256', '--auth-local=trust', '-E', 'UTF8', '--no-locale', '--no-sync'], { asPostgres: true, cwd: dir });
  const port = await freePort();
  // fsync off: a killed server loses nothing (the OS keeps the written WAL), only an OS crash would. Commits stay
  // synchronous, so what a test saw committed survives kill().
  const settings = [`-p ${port}`, `-k ${sock}`, '-c listen_addresses=127.0.0.1', '-c fsync=off', '-c full_page_writes=off', '-c max_connections=200'];
  if (tls) settings.push('-c ssl=on', `-c ssl_cert_file=${tls.cert}`, `-c ssl_key_file=${tls.key}`);
  const pgCtl = (args: string[]) => sh(join(bin, 'pg_ctl'), ['-D', data, ...args], { asPostgres: true, cwd: dir });
  const start = () => pgCtl(['-l', logFile, '-w', '-t', '30', '-o', settings.join(' '), 'start']);
  const psql = (sql: string) => sh(join(bin, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', sock, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-c', sql], { asPostgres: true, cwd: dir });

  await start();
  let running = true;
  const stopNow = () => {
    try {
      execFileSync(asRoot ? 'runuser' : join(bin, 'pg_ctl'), asRoot ? ['-u', 'postgres', '--', join(bin, 'pg_ctl'), '-D', data, '-m', 'immediate', 'stop'] : ['-D', data, '-m', 'immediate', 'stop'], { stdio: 'ignore', timeout: 10_000 });
    } catch {
      /* already down */
    }
  };
  live.add(stopNow);
  installExitHook();
  const quoted = PASSWORD.replaceAll("'", "''");
  await psql(`CREATE ROLE tessera LOGIN PASSWORD '${quoted}'`);
  await psql('CREATE DATABASE tessera OWNER tessera');

  const pw = encodeURIComponent(PASSWORD);
  const tlsQuery = tls ? `?sslmode=verify-full&sslrootcert=${encodeURIComponent(tls.ca)}` : '';
  const postmasterPid = () => Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  return {
    url: `postgres://tessera:${pw}@127.0.0.1:${port}/tessera${tlsQuery}`,
    adminUrl: `postgres://postgres:${pw}@127.0.0.1:${port}/postgres${tlsQuery}`,
    port,
    caFile: tls?.ca,
    logFile,
    async stop() {
      if (!running) return;
      await pgCtl(['-m', 'fast', '-w', '-t', '30', 'stop']);
      running = false;
    },
    async kill() {
      if (!running) return;
      const pid = postmasterPid();
      const children = (await sh('pgrep', ['-P', String(pid)]).catch(() => ''))
        .split('\n')
        .map((l) => Number(l.trim()))
        .filter((n) => n > 0);
      for (const p of [pid, ...children]) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* gone already */
        }
      }
      // Bounded: the port must refuse connections before the caller's "database lost" assertions run.
      const deadline = Date.now() + 10_000;
      while ([pid, ...children].some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      running = false;
    },
    async restart() {
      if (running) return;
      await start();
      running = true;
    },
    async destroy() {
      if (running) await pgCtl(['-m', 'immediate', '-w', '-t', '30', 'stop']).catch(() => undefined);
      running = false;
      live.delete(stopNow);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
