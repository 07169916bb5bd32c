// The door to V8's memory-reducing collection, on this process's real heap: young space grown by garbage is given
// back, the door can be used again, and the readings are sane.
import { readFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';
import { expect, test } from 'vitest';
import { cpuShareReader, openHeapTrim, residentBytes, youngGenerationBytes } from '../../../shared-io/heap-trim.js';

function makeGarbage(): number {
  // Objects that live a little while (kept by `hold` across several young collections), so V8 grows the young
  // generation as it does under start-up and load.
  let kept = 0;
  for (let round = 0; round < 40; round++) {
    const hold: { i: number; s: string }[] = [];
    for (let i = 0; i < 20_000; i++) hold.push({ i, s: `garbage ${i}` });
    kept += hold.length;
  }
  return kept;
}

test('a trim gives the young generation back to the OS; the door works more than once', async () => {
  const trim = await openHeapTrim();
  expect(trim).toBeDefined();
  for (let attempt = 0; attempt < 2; attempt++) {
    makeGarbage();
    const grown = youngGenerationBytes();
    await trim!();
    const after = youngGenerationBytes();
    expect(after).toBeLessThan(grown);
    expect(after).toBeLessThanOrEqual(1024 * 1024);
  }
  // The reading is V8's new-space figure; read it on both sides, as reading allocates and a scavenge in between
  // may resize the space (CI flake under load: 274432 against 532480).
  const v8New = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.physical_space_size;
  const before = v8New();
  const reading = youngGenerationBytes();
  expect([before, v8New()]).toContain(reading);
});

test('the CPU reading is the share of a CPU the process used since the previous reading; the memory reading is the RSS /proc shows', async () => {
  const busy = cpuShareReader(() => performance.now());
  // Spin until this process has had 30 ms of CPU (bounded): on a loaded machine wall time alone proves nothing.
  const start = process.cpuUsage();
  const giveUpAt = performance.now() + 10_000;
  while (process.cpuUsage(start).user < 30_000 && performance.now() < giveUpAt) {
    // busy on purpose: the reading must see it
  }
  expect(busy()).toBeGreaterThan(0.01);
  await new Promise((r) => setTimeout(r, 300));
  expect(busy()).toBeLessThan(0.5); // waiting costs (almost) nothing
  const statusKb = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
  expect(Math.abs(residentBytes() / 1024 - statusKb)).toBeLessThan(4096);
});

test('the CPU reading without elapsed time is not quiet', () => {
  const busy = cpuShareReader(() => 1_000);
  expect(busy()).toBe(1);
});
