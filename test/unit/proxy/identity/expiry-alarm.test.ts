// The log lines for an SVID from files nobody renews here (audit 57b F1: the log said nothing when it expired): a
// warning once 90 % of its lifetime has passed, an error at NotAfter, each once; newer files installed in time
// silence the old SVID's lines and arm the new one's; files loaded already late warn at once; a new bundle alone (a
// new snapshot of the same SVID) says nothing again (audit 57d F2). Fake time, no sleeps.
import type { Logger } from 'pino';
import { beforeAll, expect, test } from 'vitest';
import { TrustBundleSet, TrustBundle } from '../../../../common/spiffe/trust-bundle.js';
import { watchSvidExpiry } from '../../../../proxy/src/identity/expiry-alarm.js';
import { IdentityStore } from '../../../../proxy/src/identity/identity-store.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { TestCa } from '../../../helpers/test-ca.js';

const ID = 'spiffe://example.org/ns/default/sa/web';
const START = Math.floor(Date.now() / 1_000) * 1_000;
let ca: TestCa;
beforeAll(async () => {
  ca = await TestCa.create({ trustDomain: 'example.org', nowMs: START });
});

/** An SVID valid from `fromS` to `toS` seconds after START, installed in `store`. */
async function install(store: IdentityStore, fromS: number, toS: number): Promise<void> {
  const s = await ca.mintSvid(ID, { notBefore: new Date(START + fromS * 1_000), notAfter: new Date(START + toS * 1_000) });
  store.update({ source: 'files', chain: s.chain, key: s.key, bundles: new TrustBundleSet([TrustBundle.parse('example.org', ca.bundlePem())]) });
}

function setUp() {
  const time = new FakeTime(START);
  const store = new IdentityStore(time);
  const lines: string[] = [];
  const log = { warn: (_: unknown, m: string) => lines.push(`warn: ${m}`), error: (_: unknown, m: string) => lines.push(`error: ${m}`) } as unknown as Logger;
  return { time, store, lines, start: () => watchSvidExpiry(store, { nowMs: () => time.nowMs(), timers: time, log, certFile: '/f/svid.pem' }) };
}

test('a warning at 90 % of the lifetime, an error at NotAfter, each once; nothing after', async () => {
  const t = setUp();
  await install(t.store, -10, 90); // lifetime 100 s: the warning at +80 s
  t.start();
  t.time.advance(79_000);
  expect(t.lines).toEqual([]);
  t.time.advance(2_000);
  expect(t.lines).toEqual(['warn: the SVID from files expires soon: 90 % of its lifetime has passed; write newer files before NotAfter']);
  t.time.advance(9_000);
  expect(t.lines).toHaveLength(2);
  expect(t.lines[1]).toMatch(/^error: the SVID from files has expired/);
  t.time.advance(3_600_000);
  expect(t.lines).toHaveLength(2);
  expect(t.time.pending).toBe(0);
});

test('newer files in time: the old SVID says nothing, the new one is watched; files loaded late warn at once', async () => {
  const t = setUp();
  await install(t.store, -10, 90);
  const stop = t.start();
  t.time.advance(50_000);
  await install(t.store, 40, 140); // at +50 s: its warning at +130 s
  t.time.advance(79_000);
  expect(t.lines).toEqual([]);
  t.time.advance(2_000);
  expect(t.lines).toHaveLength(1);
  stop();
  expect(t.time.pending).toBe(0);

  const late = setUp();
  await install(late.store, -95, 5); // 95 % gone when loaded
  late.start();
  expect(late.lines).toHaveLength(1);
  late.time.advance(5_000);
  expect(late.lines[1]).toMatch(/^error:/);
});

test('a new bundle alone (same SVID, new snapshot) repeats neither line', async () => {
  const t = setUp();
  const s = await ca.mintSvid(ID, { notBefore: new Date(START - 10_000), notAfter: new Date(START + 90_000) });
  const bundles = () => new TrustBundleSet([TrustBundle.parse('example.org', ca.bundlePem())]);
  t.store.update({ source: 'files', chain: s.chain, key: s.key, bundles: bundles() });
  t.start();
  t.time.advance(81_000);
  for (let i = 0; i < 3; i++) t.store.update({ source: 'files', chain: s.chain, key: s.key, bundles: bundles() });
  t.time.advance(9_000);
  for (let i = 0; i < 3; i++) {
    try {
      t.store.update({ source: 'files', chain: s.chain, key: s.key, bundles: bundles() });
    } catch {
      // an expired SVID is refused by the store: the snapshot in force stays
    }
  }
  t.time.advance(60_000);
  expect(t.lines.map((l) => l.split(':')[0])).toEqual(['warn', 'error']);
});
