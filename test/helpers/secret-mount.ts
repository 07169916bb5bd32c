// A Kubernetes Secret volume on this machine: the kubelet's layout (each key a symlink through `..data` to a
// timestamped directory, files in `defaultMode`) bind-mounted READ-ONLY at the target, as a cluster mounts it.
// Needs root (mount); `canMount()` says whether this machine allows it, so callers can skip otherwise.
import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './run.js';

export interface SecretMount {
  readonly target: string;
  unmount(): Promise<void>;
}

export interface SecretOptions {
  /** File mode of every key (the Secret's `defaultMode`); 0644 is Kubernetes' default. */
  readonly mode: number;
  /** Group owner of the files (what `fsGroup` sets); unchanged when left out. */
  readonly gid?: number;
}

let mountable: boolean | undefined;

/** True when this process may bind-mount (root in a namespace that allows it); probed once. */
export function canMount(scratch: string): boolean {
  if (mountable !== undefined) return mountable;
  mountable = false;
  if (process.getuid?.() !== 0) return mountable;
  try {
    execFileSync('mkdir', ['-p', join(scratch, 'probe-src'), join(scratch, 'probe-dst')]);
    execFileSync('mount', ['--bind', '-o', 'ro', join(scratch, 'probe-src'), join(scratch, 'probe-dst')], { stdio: 'ignore' });
    execFileSync('umount', [join(scratch, 'probe-dst')]);
    mountable = true;
  } catch {
    mountable = false;
  }
  return mountable;
}

/** Lays out `files` as the kubelet does under `source`, then mounts `source` read-only on `target`. */
export async function mountSecret(source: string, target: string, files: Readonly<Record<string, string | Buffer>>, opts: SecretOptions): Promise<SecretMount> {
  const stamp = '..2026_12_03_09_00_00.123456789';
  await mkdir(join(source, stamp), { recursive: true });
  await mkdir(target, { recursive: true });
  for (const [name, data] of Object.entries(files)) {
    const file = join(source, stamp, name);
    await writeFile(file, data);
    await chmod(file, opts.mode);
    if (opts.gid !== undefined) await chown(file, 0, opts.gid);
    await symlink(join('..data', name), join(source, name));
  }
  await symlink(stamp, join(source, '..data'));
  const m = await run('mount', ['--bind', '-o', 'ro', source, target]);
  if (m.code !== 0) throw new Error(`mount failed: ${m.stderr}`);
  let mounted = true;
  return {
    target,
    async unmount() {
      if (!mounted) return;
      mounted = false;
      await run('umount', [target]);
    },
  };
}
