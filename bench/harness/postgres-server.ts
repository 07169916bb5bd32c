// A private PostgreSQL server for a benchmark (Debian's `postgresql` package): initdb in a temp dir, then the
// postmaster in the foreground under the bench's process supervisor (stopped with the rest, on Ctrl-C too) on a
// free loopback port, one password-protected role owning the databases asked for. The same settings as the test
// server (test/helpers/postgres-server.ts, which the build cannot import): fsync off, commits still synchronous.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProcessSupervisor } from '../../shared-io/process-supervisor.js';
import { freePorts } from './ports.js';
import { reapedChildrenTicks, sampleTree } from './proc-stat.js';

const STEP_TIMEOUT_MS = 60_000;
const PASSWORD = 'tessera-bench-pw';

export interface BenchPostgres {
  /** The supervised process: runuser (as root) or the postmaster. */
  readonly pid: number;
  /**
   * CPU ticks of every PostgreSQL process so far: the live tree (postmaster, backends, background workers) plus
   * what the postmaster's exited backends used (its reaped children's time), so a pooled connection closing in a
   * window does not take its CPU with it.
   */
  cpuTicks(): number;
  readonly version: string;
  /** postgres://tessera:…@127.0.0.1:<port>/<database> */
  url(database: string): string;
  /** Fast shutdown (SIGINT), then the data directory goes. */
  stop(): Promise<void>;
}

/** The newest installed server's bin dir (/usr/lib/postgresql/<major>/bin), or null. */
export function postgresBinDir(): string | null {
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root) ? readdirSync(root).filter((d) => /^\d+$/.test(d) && existsSync(join(root, d, 'bin', 'postgres'))) : [];
  if (majors.length === 0) return null;
  return join(root, majors.sort((x, y) => Number(y) - Number(x))[0]!, 'bin');
}

const asRoot = () => process.getuid?.() === 0;
/** As root, PostgreSQL refuses to run: its commands run as the `postgres` user. */
const asPostgres = (cmd: string, args: readonly string[]): [string, string[]] => (asRoot() ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, [...args]]);

function sh(cmd: string, args: readonly string[], cwd: string): Promise<string> {
  const [c, a] = asPostgres(cmd, args);
  return new Promise((resolve, reject) => {
    execFile(c, a, { timeout: STEP_TIMEOUT_MS, cwd, maxBuffer: 4 << 20 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`)) : resolve(stdout)));
  });
}

export async function startBenchPostgres(group: ProcessSupervisor, databases: readonly string[]): Promise<BenchPostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (Debian package "postgresql")');
  // Its own temp dir, not the work dir: the postgres user must be able to reach it.
  const dir = await mkdtemp(join(tmpdir(), 'tessera-bench-pg-'));
  try {
    const data = join(dir, 'data');
    const sock = join(dir, 'sock');
    await mkdir(sock);
    await writeFile(join(dir, 'pw'), `${PASSWORD}\n`);
    if (asRoot()) {
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
      for (const p of [dir, sock, join(dir, 'pw')]) await chown(p, uid, gid);
    }
    await sh(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--pwfile', join(dir, 'pw'), '-A', 'scram-sha-256', '--auth-local=trust', '-E', 'UTF8', '--no-locale', '--no-sync'], dir);
    const [port] = await freePorts(1);
    const settings = [`-p${port}`, `-k${sock}`, '-clisten_addresses=127.0.0.1', '-cfsync=off', '-cfull_page_writes=off', '-cmax_connections=200'];
    const [command, args] = asPostgres(join(bin, 'postgres'), ['-D', data, ...settings]);
    const proc = await group.start({ name: 'postgres', command, args, cwd: dir, ready: { line: /database system is ready to accept connections/ }, readyTimeoutMs: 30_000 });
    const psql = (sql: string) => sh(join(bin, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', sock, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-c', sql], dir);
    await psql(`CREATE ROLE tessera LOGIN PASSWORD '${PASSWORD}'`);
    for (const db of databases) await psql(`CREATE DATABASE ${db} OWNER tessera`);
    const version = (await sh(join(bin, 'postgres'), ['--version'], dir)).trim();
    return {
      pid: proc.pid,
      cpuTicks: () => {
        const tree = sampleTree(proc.pid);
        return tree.pids.reduce((a, p) => a + reapedChildrenTicks(p), tree.cpuTicks);
      },
      version,
      url: (db) => `postgres://tessera:${PASSWORD}@127.0.0.1:${port}/${db}`,
      async stop() {
        // SIGINT = fast shutdown: clients cut, a checkpoint, exit. The supervisor escalates to SIGKILL after its grace.
        await proc.stop({ signal: 'SIGINT' });
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
