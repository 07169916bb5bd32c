// Opening the CA from the data dir: creation and every later change are audited and handed on; a change committed
// without its audit line (the process was killed in between) is audited as `ca.recovered` at the next open, exactly
// once, including an authority the trail shows but the state no longer has.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { TrustDomain } from '../../../../common/spiffe/trust-domain.js';
import { auditCaRecovery } from '../../../../control-plane/src/ca/audit-recovery.js';
import type { CaManager } from '../../../../control-plane/src/ca/ca-manager.js';
import { openCa } from '../../../../control-plane/src/ca/open-ca.js';
import { openSqliteStore } from '../../../../control-plane/src/store/sqlite/open-sqlite-store.js';
import type { ControlPlaneStore } from '../../../../control-plane/src/store/store-contract.js';
import { TEST_LIFETIMES, openTestCa } from '../../../helpers/control-plane-parts.js';
import { TD } from '../../../helpers/control-plane.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { makeTempDir } from '../../../helpers/run.js';

describe('openCa and the audit repair', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let store: ControlPlaneStore | undefined;
  const time = new FakeTime(Date.UTC(2026, 0, 1));
  beforeEach(async () => {
    ({ dir, cleanup } = await makeTempDir());
  });
  afterEach(async () => {
    await store?.close();
    store = undefined;
    await cleanup();
  });

  const logged: string[] = [];
  let changes = 0;
  async function open(): Promise<CaManager> {
    store = await openSqliteStore(dir);
    const s = store;
    return openCa({ dataDir: dir, trustDomain: TrustDomain.parse(TD), lifetimes: TEST_LIFETIMES, clock: time, inventory: s.inventory, audit: s.audit, log: { info: (o) => logged.push(String(o['event'])) }, onChange: () => changes++ });
  }
  const trail = async () => (await store!.audit.recent('ca.')).reverse().map((e) => [e['event'], e['authority'], e['state'] ?? null, e['audited'] ?? null]);
  const fileLines = () => readFileSync(join(dir, 'audit.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).event);

  test('creation and each change are audited (file and table), logged and handed on; nothing is "recovered"', async () => {
    logged.length = 0;
    changes = 0;
    const ca = await open();
    const first = ca.current().signer.authorityId;
    const next = await ca.prepare();
    await ca.activate();
    expect(await trail()).toEqual([
      ['ca.created', first, null, null],
      ['ca.prepared', next.id, null, null],
      ['ca.activated', next.id, null, null],
      ['ca.retired', first, null, null],
    ]);
    expect(fileLines()).toEqual(['ca.created', 'ca.prepared', 'ca.activated', 'ca.retired']);
    expect(logged).toEqual(['ca.created', 'ca.prepared', 'ca.activated', 'ca.retired']);
    expect(changes).toBe(3);
    await store!.close();
    await open();
    expect(await trail()).toHaveLength(4);
  });

  test('changes committed without their audit lines are audited as recovered at the next open, once', async () => {
    // The CA created and a successor prepared, both committed, with no audit line written (killed before it).
    const unaudited = await openTestCa(dir, time);
    const first = unaudited.ca.current().signer.authorityId;
    const prepared = await unaudited.ca.prepare();
    await unaudited.store.close();

    await open();
    expect(await trail()).toEqual([
      ['ca.recovered', first, 'active', null],
      ['ca.recovered', prepared.id, 'prepared', null],
    ]);
    expect(fileLines()).toEqual(['ca.recovered', 'ca.recovered']);
    await store!.close();
    await open();
    expect(await trail()).toHaveLength(2);
  });

  test('an authority the trail shows but the state lost is audited as removed; a state change the trail missed names both', async () => {
    store = await openSqliteStore(dir);
    const audit = store.audit;
    audit.record(1, { event: 'ca.created', authority: 'aaaa' });
    audit.record(2, { event: 'ca.prepared', authority: 'bbbb' });
    audit.record(3, { event: 'ca.prepared', authority: 'cccc' });
    await auditCaRecovery(audit, [{ record: { id: 'aaaa', state: 'retired' } }, { record: { id: 'cccc', state: 'prepared' } }], 10);
    expect((await trail()).slice(3)).toEqual([
      ['ca.recovered', 'aaaa', 'retired', 'active'],
      ['ca.recovered', 'bbbb', 'removed', 'prepared'],
    ]);
    // The recovered lines are now the trail: a second pass adds nothing.
    await auditCaRecovery(audit, [{ record: { id: 'aaaa', state: 'retired' } }, { record: { id: 'cccc', state: 'prepared' } }], 11);
    expect(await trail()).toHaveLength(5);
  });
});
