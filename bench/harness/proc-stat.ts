// Reads CPU time and memory of processes (and their descendants) from /proc: the one source of every CPU figure.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

export interface ProcStat {
  readonly pid: number;
  readonly comm: string;
  readonly state: string;
  readonly ppid: number;
  /** Field 14: user time of all threads, in clock ticks. */
  readonly utimeTicks: number;
  /** Field 15: system time of all threads, in clock ticks. */
  readonly stimeTicks: number;
}

/**
 * Parses /proc/<pid>/stat. The command name (field 2) sits in parentheses and may itself hold spaces or
 * parentheses, so the fields are counted from the LAST ')'.
 */
export function parseProcStat(text: string): ProcStat {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) throw new Error(`malformed /proc stat line: ${text.slice(0, 80)}`);
  const rest = text.slice(close + 2).trim().split(/\s+/);
  // rest[0] is field 3 (state); field N is rest[N - 3].
  const field = (n: number): number => {
    const v = Number(rest[n - 3]);
    if (!Number.isFinite(v)) throw new Error(`malformed /proc stat field ${n}: ${text.slice(0, 80)}`);
    return v;
  };
  return {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    state: rest[0] ?? '?',
    ppid: field(4),
    utimeTicks: field(14),
    stimeTicks: field(15),
  };
}

/** VmRSS from /proc/<pid>/status, in KiB (0 for a kernel thread or a zombie without the line). */
export function parseVmRssKb(statusText: string): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(statusText);
  return m ? Number(m[1]) : 0;
}

/**
 * `Pss:` from /proc/<pid>/smaps_rollup, in KiB (null without the line: a kernel thread, or a kernel before 4.14).
 * PSS divides each shared page among the processes mapping it, so the PSS of a process tree adds up to what it
 * really costs (an nginx master and worker share most of their pages; RSS counts those twice).
 */
export function parsePssKb(smapsRollupText: string): number | null {
  const m = /^Pss:\s+(\d+)\s+kB/m.exec(smapsRollupText);
  return m ? Number(m[1]) : null;
}

/** The aggregate "cpu" line of /proc/stat: jiffies per state since boot. */
export interface CpuTimes {
  readonly user: number;
  readonly nice: number;
  readonly system: number;
  readonly idle: number;
  readonly iowait: number;
  readonly irq: number;
  readonly softirq: number;
  readonly steal: number;
}

export function parseCpuLine(procStatText: string): CpuTimes {
  const line = procStatText.split('\n').find((l) => /^cpu\s/.test(l));
  if (!line) throw new Error('no aggregate cpu line in /proc/stat');
  const n = line.trim().split(/\s+/).slice(1).map(Number);
  const at = (i: number) => n[i] ?? 0;
  return { user: at(0), nice: at(1), system: at(2), idle: at(3), iowait: at(4), irq: at(5), softirq: at(6), steal: at(7) };
}

/** Busy and steal shares of all CPUs between two /proc/stat samples, as fractions of elapsed CPU time. */
export function cpuShares(before: CpuTimes, after: CpuTimes): { busy: number; steal: number } {
  const total = (t: CpuTimes) => t.user + t.nice + t.system + t.idle + t.iowait + t.irq + t.softirq + t.steal;
  const elapsed = total(after) - total(before);
  if (elapsed <= 0) return { busy: 0, steal: 0 };
  const idle = after.idle + after.iowait - (before.idle + before.iowait);
  return { busy: (elapsed - idle - (after.steal - before.steal)) / elapsed, steal: (after.steal - before.steal) / elapsed };
}

/** Children of each pid, from a list of stat records. */
export function descendantsOf(root: number, stats: readonly Pick<ProcStat, 'pid' | 'ppid'>[]): number[] {
  const byParent = new Map<number, number[]>();
  for (const s of stats) byParent.set(s.ppid, [...(byParent.get(s.ppid) ?? []), s.pid]);
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const p = queue.shift()!;
    for (const c of byParent.get(p) ?? []) {
      if (!out.includes(c) && c !== root) {
        out.push(c);
        queue.push(c);
      }
    }
  }
  return out;
}

// ---- I/O: live reads of /proc ----

/** /proc/<pid>/stat parsed; null when the process is gone or the file unreadable. */
export function readStat(pid: number): ProcStat | null {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/** Every readable /proc/<pid>/stat (a process that exits while the directory is listed is left out). */
export function allStats(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) out.push(s);
  }
  return out;
}

/** A root and its live descendants, from one listing of /proc (pass `stats` to share one listing among roots). */
export function treePids(rootPid: number, stats: readonly Pick<ProcStat, 'pid' | 'ppid'>[] = allStats()): number[] {
  return [rootPid, ...descendantsOf(rootPid, stats)];
}

export interface TreeSample {
  /** utime + stime of the root and every live descendant (e.g. an nginx master and its workers), in ticks. */
  readonly cpuTicks: number;
  readonly rssKb: number;
  readonly pids: readonly number[];
}

/** One sample of a process tree. A process that has exited contributes nothing (its ticks are gone with it). */
export function sampleTree(rootPid: number): TreeSample {
  const pids = treePids(rootPid);
  let cpuTicks = 0;
  let rssKb = 0;
  const live: number[] = [];
  for (const pid of pids) {
    const s = readStat(pid);
    if (!s) continue;
    live.push(pid);
    cpuTicks += s.utimeTicks + s.stimeTicks;
    try {
      rssKb += parseVmRssKb(readFileSync(`/proc/${pid}/status`, 'utf8'));
    } catch {
      // exited between the two reads
    }
  }
  return { cpuTicks, rssKb, pids: live };
}

/**
 * PSS of a process tree (root and live descendants), in KiB; null when no process of it could be read (gone, or
 * smaps_rollup unreadable). Reading smaps_rollup walks the page tables: the reader pays, so sample it outside a
 * measured window's CPU readings.
 */
export function samplePssKb(rootPid: number): number | null {
  let total: number | null = null;
  for (const pid of treePids(rootPid)) {
    try {
      const kb = parsePssKb(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
      if (kb !== null) total = (total ?? 0) + kb;
    } catch {
      // exited, or not readable by this user
    }
  }
  return total;
}

/**
 * Fields 16 + 17 of /proc/<pid>/stat (cutime + cstime): CPU of the children this process has reaped, in ticks.
 * A server that forks a process per connection (PostgreSQL) keeps an exited backend's CPU here; 0 when gone.
 */
export function reapedChildrenTicks(pid: number): number {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = text.slice(text.lastIndexOf(')') + 2).trim().split(/\s+/);
    const v = Number(rest[16 - 3]) + Number(rest[17 - 3]);
    return Number.isFinite(v) ? v : 0;
  } catch {
    return 0;
  }
}

export function readCpuTimes(): CpuTimes {
  return parseCpuLine(readFileSync('/proc/stat', 'utf8'));
}

/** `getconf CLK_TCK` (the unit of fields 14/15), normally 100. */
export function clockTicksPerSecond(): number {
  try {
    const v = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(v) && v > 0 ? v : 100;
  } catch {
    return 100;
  }
}
