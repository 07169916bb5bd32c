// Who else can read a private key file: shared by the CA's key store and the proxy's identity files. Owner-only is
// always fine; group permission is fine for a group this process is in, which is how a Kubernetes Secret volume is
// read (the kubelet makes its files root:<fsGroup> 0440, whatever defaultMode says, once the pod has an fsGroup).
import type { Stats } from 'node:fs';

/** The process's uid and groups, for judging who else can read a key file. */
export interface ProcessIdentity {
  readonly uid: number;
  readonly groups: readonly number[];
}

export function processIdentity(): ProcessIdentity {
  return { uid: process.getuid?.() ?? -1, groups: [process.getgid?.() ?? -1, ...(process.getgroups?.() ?? [])] };
}

/**
 * Why a private key file is readable by someone it should not be, or null. Refused: any permission for others
 * (o+r/w), and group permission for a group the process is not in (its members are unknown users). Accepted:
 * group permission for the process's own group or supplementary group (a Kubernetes Secret with `fsGroup` and
 * `defaultMode: 0440` is root:<fsGroup> 0440 — the group is how the process reads it). Group 0 is no exception:
 * root needs no group bits, so they would only let other members of group 0 read it (every container of an
 * OpenShift pod runs in group 0; a process that does too is in it, and accepted as for any group of its own).
 */
export function keyExposure(st: Pick<Stats, 'mode' | 'gid'>, me: ProcessIdentity): string | null {
  const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
  if ((st.mode & 0o006) !== 0) return `mode ${mode} lets every user ${st.mode & 0o004 ? 'read' : 'write'} it`;
  if ((st.mode & 0o060) !== 0 && !me.groups.includes(st.gid)) return `mode ${mode} lets group ${st.gid}, which this process (uid ${me.uid}) is not in, ${st.mode & 0o040 ? 'read' : 'write'} it`;
  return null;
}

/**
 * The stricter rule for a key only its owner may touch, group included (a key Tessera writes itself, an offline
 * root on its holder's machine): `mode NNNN` when any group or other bit is set, else null.
 */
export function beyondOwner(mode: number): string | null {
  return (mode & 0o077) === 0 ? null : `mode ${(mode & 0o777).toString(8).padStart(4, '0')}`;
}
