// A Kubernetes Secret volume on this machine: the kubelet's layout (each key a symlink through `..data` to a
// timestamped directory, files in `defaultMode`) bind-mounted READ-ONLY at the target, as a cluster mounts it, and
// updated as the kubelet updates it (a new timestamped directory, `..data` swapped in one rename). Mounting needs root;
// `canMount()` says whether this machine allows it, so callers can skip otherwise (layOutSecret alone needs nothing).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { chmod, chown, mkdir, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './run.js';

export interface SecretMount {
  readonly target: string;
  /** Replaces the Secret's files as the kubelet does when the Secret is updated: a new timestamped dir, `..data` swapped. */
  update(files: Readonly<Record<string, string | Buffer>>): Promise<void>;
  unmount(): Promise<void>;
}

export interface SecretOptions {
  /** File mode of every key (the Secret's `defaultMode`); 0644 is Kubernetes' default. */
  readonly mode: number;
  /** Group owner of the files (what `fsGroup` sets); unchanged when left out. */
  readonly gid?: number;
}

let mountable: boolean | undefined;

/**
 * True when this process may bind-mount (root in a namespace that allows it); probed once, in a scratch dir of its
 * own that it unmounts and removes before returning (a probe dir left per test file filled /tmp).
 */
export function canMount(): boolean {
  if (mountable !== undefined) return mountable;
  mountable = false;
  if (process.getuid?.() !== 0) return mountable;
  const scratch = mkdtempSync(join(tmpdir(), 'tessera-mount-probe-'));
  const src = join(scratch, 'src');
  const dst = join(scratch, 'dst');
  let mounted = false;
  try {
    mkdirSync(src);
    mkdirSync(dst);
    execFileSync('mount', ['--bind', '-o', 'ro', src, dst], { stdio: 'ignore' });
    mounted = true;
    execFileSync('umount', [dst], { stdio: 'ignore' });
    mounted = false;
    mountable = true;
  } catch {
    mountable = false;
  } finally {
    // Removing through a live mount point fails (EBUSY): detach it first if the umount above did not happen.
    try {
      if (mounted) execFileSync('umount', ['-l', dst], { stdio: 'ignore' });
      rmSync(scratch, { recursive: true, force: true });
    } catch {
      // Still mounted: the answer above stands; the dir is left rather than the probe throwing.
    }
  }
  return mountable;
}

/** Writes `files` into a new timestamped dir of `source`, as the kubelet's AtomicWriter does. */
async function writeStamp(source: string, stamp: string, files: Readonly<Record<string, string | Buffer>>, opts: SecretOptions): Promise<void> {
  await mkdir(join(source, stamp), { recursive: true });
  for (const [name, data] of Object.entries(files)) {
    const file = join(source, stamp, name);
    await writeFile(file, data);
    await chmod(file, opts.mode);
    if (opts.gid !== undefined) await chown(file, 0, opts.gid);
  }
}

export interface SecretLayout {
  readonly dir: string;
  /** Replaces the files as the kubelet does when the Secret is updated: a new timestamped dir, one rename of `..data`. */
  update(files: Readonly<Record<string, string | Buffer>>): Promise<void>;
}

/** Lays out `files` in `source` as the kubelet does (no mount: any user may, and it stays writable). */
export async function layOutSecret(source: string, files: Readonly<Record<string, string | Buffer>>, opts: SecretOptions): Promise<SecretLayout> {
  let stamp = '..2026_12_03_09_00_00.123456789';
  let names = Object.keys(files);
  let updates = 0;
  await writeStamp(source, stamp, files, opts);
  for (const name of names) await symlink(join('..data', name), join(source, name));
  await symlink(stamp, join(source, '..data'));
  return {
    dir: source,
    async update(next) {
      const old = stamp;
      stamp = `..2026_12_03_09_00_00.${123456789 + ++updates}`;
      await writeStamp(source, stamp, next, opts);
      await symlink(stamp, join(source, '..data_tmp'));
      await rename(join(source, '..data_tmp'), join(source, '..data'));
      for (const name of Object.keys(next)) if (!names.includes(name)) await symlink(join('..data', name), join(source, name));
      for (const name of names) if (!Object.hasOwn(next, name)) await unlink(join(source, name));
      names = Object.keys(next);
      await rm(join(source, old), { recursive: true });
    },
  };
}

/** Lays out `files` as the kubelet does under `source`, then mounts `source` read-only on `target`. */
export async function mountSecret(source: string, target: string, files: Readonly<Record<string, string | Buffer>>, opts: SecretOptions): Promise<SecretMount> {
  const layout = await layOutSecret(source, files, opts);
  await mkdir(target, { recursive: true });
  const m = await run('mount', ['--bind', '-o', 'ro', source, target]);
  if (m.code !== 0) throw new Error(`mount failed: ${m.stderr}`);
  let mounted = true;
  return {
    target,
    // Behind the read-only mount, in the source, as the kubelet writes.
    update: (next) => layout.update(next),
    async unmount() {
      if (!mounted) return;
      mounted = false;
      await run('umount', [target]);
    },
  };
}
