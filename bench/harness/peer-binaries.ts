// Finds (and, as root, installs) the peer binaries: nginx and HAProxy from Debian packages, h2load when present.
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

const EXTRA_DIRS = ['/usr/sbin', '/sbin', '/usr/local/sbin'];

export function findBinary(name: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const dirs = [...(env['PATH'] ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const d of dirs) {
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

function exec(cmd: string, args: readonly string[], timeoutMs = 300_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

const canInstall = () => process.getuid?.() === 0 && findBinary('apt-get') !== null;

/** `apt-get install`, with one `apt-get update` retry; the failure's last lines, or null when it worked. */
async function aptInstall(pkgs: readonly string[]): Promise<string | null> {
  let r = await exec('apt-get', ['install', '-y', '-q', ...pkgs]);
  if (r.code !== 0) {
    await exec('apt-get', ['update', '-q']);
    r = await exec('apt-get', ['install', '-y', '-q', ...pkgs]);
  }
  return r.code === 0 ? null : `apt-get install ${pkgs.join(' ')} failed: ${r.out.trim().split('\n').slice(-2).join(' ')}`;
}

/** wrk for `--load wrk`: found on PATH, or installed from Debian as root; else why it is missing. */
export async function ensureWrk(log: (line: string) => void): Promise<{ readonly wrk: string } | { readonly missing: string }> {
  const found = findBinary('wrk');
  if (found) return { wrk: found };
  if (!canInstall()) return { missing: 'wrk is not installed and the harness does not run as root: install it with `apt-get install -y wrk`' };
  log('installing wrk (Debian package) for --load wrk');
  const failure = await aptInstall(['wrk']);
  const wrk = findBinary('wrk');
  return wrk ? { wrk } : { missing: failure ?? 'wrk was installed but is not on PATH' };
}

export interface PeerBinaries {
  readonly nginx: string | null;
  readonly haproxy: string | null;
  readonly h2load: string | null;
  /** Why a peer is missing, for the results' notes. */
  readonly notes: readonly string[];
}

/**
 * nginx and HAProxy are compared in the same run. When one is missing and we run as root, install the Debian
 * packages (`nginx-light`, `haproxy`); otherwise the variant is skipped with a note saying how to get it.
 */
export async function ensurePeerBinaries(log: (line: string) => void, wanted: { nginx?: boolean; haproxy?: boolean } = { nginx: true, haproxy: true }): Promise<PeerBinaries> {
  const notes: string[] = [];
  const missing = () => [wanted.nginx && !findBinary('nginx') ? 'nginx-light' : null, wanted.haproxy && !findBinary('haproxy') ? 'haproxy' : null].filter((x): x is string => x !== null);
  let pkgs = missing();
  if (pkgs.length > 0) {
    if (canInstall()) {
      log(`installing ${pkgs.join(' ')} (Debian packages) for the peer comparison`);
      const failure = await aptInstall(pkgs);
      if (failure) notes.push(failure);
    } else {
      notes.push(`${pkgs.join(' and ')} missing and not running as root: install with \`apt-get install -y ${pkgs.join(' ')}\` to compare against them`);
    }
    pkgs = missing();
  }
  return { nginx: wanted.nginx ? findBinary('nginx') : null, haproxy: wanted.haproxy ? findBinary('haproxy') : null, h2load: findBinary('h2load'), notes };
}

/** First line of a tool's version output ("nginx version: nginx/1.22.1"), or null. */
export async function toolVersion(cmd: string | null, args: readonly string[]): Promise<string | null> {
  if (!cmd) return null;
  const r = await exec(cmd, args, 10_000);
  const line = r.out.split('\n').find((l) => l.trim().length > 0);
  return line ? line.trim() : null;
}
