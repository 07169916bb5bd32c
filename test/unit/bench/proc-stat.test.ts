// /proc parsing: stat fields counted from the last ')', VmRSS, the aggregate cpu line, process trees.
import { describe, expect, test } from 'vitest';
import { cpuShares, descendantsOf, parseCpuLine, parseProcStat, parsePssKb, parseVmRssKb, samplePssKb, sampleTree } from '../../../bench/harness/proc-stat.js';

// A real line shape: 52 fields, utime (14) = 1234, stime (15) = 567.
const fields = (comm: string) =>
  `4242 (${comm}) S 1 4242 4242 0 -1 4194560 2507 0 0 0 1234 567 0 0 20 0 7 0 123456 1161854976 18624 18446744073709551615 1 1 0 0 0 0 0 16781312 17922 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0`;

describe('parseProcStat', () => {
  test('reads pid, comm, state, ppid, utime and stime', () => {
    expect(parseProcStat(fields('node'))).toEqual({ pid: 4242, comm: 'node', state: 'S', ppid: 1, utimeTicks: 1234, stimeTicks: 567 });
  });
  test('a command name with spaces and parentheses does not shift the fields', () => {
    const s = parseProcStat(fields('nginx: worker (x) ) y'));
    expect(s.comm).toBe('nginx: worker (x) ) y');
    expect([s.ppid, s.utimeTicks, s.stimeTicks]).toEqual([1, 1234, 567]);
  });
  test('garbage is refused', () => {
    expect(() => parseProcStat('not a stat line')).toThrow();
  });
});

test('parseVmRssKb reads VmRSS, 0 when absent', () => {
  expect(parseVmRssKb('Name:\tnode\nVmPeak:\t  9000 kB\nVmRSS:\t   81234 kB\nThreads: 7\n')).toBe(81234);
  expect(parseVmRssKb('Name:\tkthreadd\nThreads: 1\n')).toBe(0);
});

test('parseCpuLine and cpuShares: busy and steal shares between two samples', () => {
  const a = parseCpuLine('cpu  100 0 50 800 10 0 0 40 0 0\ncpu0 50 0 25 400 5 0 0 20 0 0\n');
  const b = parseCpuLine('cpu  200 0 100 900 10 0 0 90 0 0\n');
  expect(a).toMatchObject({ user: 100, system: 50, idle: 800, iowait: 10, steal: 40 });
  // elapsed = 100 user + 50 system + 100 idle + 50 steal = 300; busy excludes idle and steal.
  const s = cpuShares(a, b);
  expect(s.busy).toBeCloseTo(150 / 300);
  expect(s.steal).toBeCloseTo(50 / 300);
});

test('descendantsOf follows ppid links through grandchildren (an nginx master, its workers, their helpers)', () => {
  const stats = [
    { pid: 10, ppid: 1 },
    { pid: 11, ppid: 10 },
    { pid: 12, ppid: 10 },
    { pid: 13, ppid: 12 },
    { pid: 20, ppid: 1 },
  ];
  expect(descendantsOf(10, stats).sort()).toEqual([11, 12, 13]);
  expect(descendantsOf(20, stats)).toEqual([]);
});

test('sampleTree reads this very process from /proc', () => {
  const before = sampleTree(process.pid);
  let x = 0;
  for (let i = 0; i < 3e7; i++) x += i % 7;
  const after = sampleTree(process.pid);
  expect(x).toBeGreaterThan(0);
  expect(after.pids).toContain(process.pid);
  expect(after.rssKb).toBeGreaterThan(1000);
  expect(after.cpuTicks).toBeGreaterThanOrEqual(before.cpuTicks);
});

test('parsePssKb reads Pss from smaps_rollup (not Pss_Anon and friends), null when absent', () => {
  const rollup = '55d1c000-7ffc0000 ---p 00000000 00:00 0   [rollup]\nRss:              101234 kB\nPss:               47321 kB\nPss_Anon:          40000 kB\nPss_File:           7321 kB\n';
  expect(parsePssKb(rollup)).toBe(47321);
  expect(parsePssKb('Pss_Anon: 12 kB\n')).toBeNull();
});

test('samplePssKb reads this very process: PSS is at most RSS; a pid that does not exist gives null', () => {
  const pss = samplePssKb(process.pid);
  expect(pss).not.toBeNull();
  expect(pss!).toBeGreaterThan(1000);
  expect(pss!).toBeLessThanOrEqual(sampleTree(process.pid).rssKb * 1.05);
  expect(samplePssKb(2 ** 22 + 1)).toBeNull();
});
