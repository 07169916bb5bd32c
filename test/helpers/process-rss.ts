// A test process's resident memory (VmRSS from /proc), and its peak while some work runs: how the memory-bound tests
// (pipelined and unread answers, hostile input) measure a real proxy process.
import { readFile } from 'node:fs/promises';

/** Resident memory of process `pid`, in bytes. */
export async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)![1]) * 1024;
}

/** The largest RSS of `pid` seen while `during` runs (sampled every 100 ms) and just after it. */
export async function peakRssBytes(pid: number, during: () => Promise<void>): Promise<number> {
  let peak = await rssBytes(pid);
  let running = true;
  const sampler = (async () => {
    while (running) {
      peak = Math.max(peak, await rssBytes(pid));
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    await during();
  } finally {
    running = false;
    await sampler;
  }
  return Math.max(peak, await rssBytes(pid));
}
