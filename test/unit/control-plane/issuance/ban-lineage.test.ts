// A serial ban follows the SVIDs renewed from it: whoever held the banned key may have renewed before the ban
// (a thief's new SVID names the banned serial as its origin). Live renewals are banned with it, transitively; a
// renewal whose origin is banned while it is being signed is banned itself and refused.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { generateKeyPair, type KeyPair } from '../../../../common/pki/keys.js';
import type { SignResult } from '../../../../control-plane/src/issuance/issuer.js';
import type { Revocations } from '../../../../control-plane/src/issuance/revocations.js';
import { openTestCa, type TestCaParts } from '../../../helpers/control-plane-parts.js';
import { TD } from '../../../helpers/control-plane.js';
import { makeTempDir } from '../../../helpers/run.js';
import { openTestRevocations, type TestIssuer, testIssuer } from '../../../helpers/test-issuer.js';

const WEB = `spiffe://${TD}/ns/default/sa/web`;

describe('serial bans and renewals', () => {
  let cleanup: () => Promise<void>;
  let parts: TestCaParts;
  let revocations: Revocations;
  let onCheckStored: (serial: string | undefined) => Promise<void>;
  let t: TestIssuer;
  let changes: number;
  const clock = { nowMs: () => Date.now() };

  beforeEach(async () => {
    const tmp = await makeTempDir();
    cleanup = tmp.cleanup;
    parts = await openTestCa(tmp.dir, clock);
    changes = 0;
    revocations = await openTestRevocations(parts, clock, () => changes++);
    onCheckStored = async () => {};
    // The check before signing, with a hook to commit a ban right after it passed (the race a ban can meet).
    t = testIssuer(parts, clock, {
      check: (id, serial) => revocations.check(id, serial),
      checkStored: async (id, serial) => {
        await revocations.checkStored(id, serial);
        await onCheckStored(serial);
      },
      checkRenewal: (id, origin, serial) => revocations.checkRenewal(id, origin, serial),
    });
  });
  afterEach(async () => {
    await parts.store.close();
    await cleanup();
  });

  const codeOf = (p: Promise<unknown>) => p.then(() => 'issued', (e: unknown) => (isTesseraError(e) ? e.code : `not coded: ${String(e)}`));
  const attest = (key: KeyPair) => t.attest(key, WEB);
  const renew = (key: KeyPair, svid: SignResult) => t.renew(key, svid, WEB);
  const serials = () => revocations.denyList().serials;

  test('banning a serial bans the live SVIDs renewed from it, transitively, and nothing else', async () => {
    const key = generateKeyPair();
    const root = await attest(key);
    const legit = await renew(key, root);
    const thief = await renew(key, root);
    const grandchild = await renew(key, legit);
    const other = await attest(generateKeyPair());
    const r = await revocations.ban({ kind: 'serial', value: root.serial, reason: 'leaked', createdBy: 'alice' });
    expect(r.created).toBe(true);
    expect(r.renewals.sort()).toEqual([legit.serial, thief.serial, grandchild.serial].sort());
    expect([...serials()].sort()).toEqual([root.serial, legit.serial, thief.serial, grandchild.serial].sort());
    expect(serials()).not.toContain(other.serial);
    expect(await codeOf(renew(key, grandchild))).toBe('TESSERA_ERR_REVOCATION_SERIAL_BANNED');
    // Listed with their reason and the operator, audited like any ban.
    const listed = await revocations.list();
    // Each names the serial banned (whose lift then lists it), not its own origin: the ban reached it by its chain.
    expect(listed.find((b) => b.value === grandchild.serial)).toMatchObject({ reason: `renewed from banned serial ${root.serial}`, createdBy: 'alice' });
    // The same ban again adds nothing and says so.
    expect(await revocations.ban({ kind: 'serial', value: root.serial, reason: 'again', createdBy: 'bob' })).toMatchObject({ created: false, renewals: [] });
  });

  test('a renewal signed while its origin is banned (the ban stored after its check) is refused and banned', async () => {
    const key = generateKeyPair();
    const root = await attest(key);
    onCheckStored = async (serial) => {
      if (serial === root.serial) await revocations.ban({ kind: 'serial', value: root.serial, reason: 'leaked', createdBy: 'alice' });
    };
    expect(await codeOf(renew(key, root))).toBe('TESSERA_ERR_REVOCATION_SERIAL_BANNED');
    // The signed one is in the inventory as a renewal of root, and banned: it was never handed out.
    const [signed] = await parts.store.inventory.renewalsOf(root.serial);
    expect(signed).toBeDefined();
    expect(serials()).toContain(signed!.serial);
    expect((await revocations.list()).find((b) => b.value === signed!.serial)).toMatchObject({ createdBy: 'control-plane', reason: `renewed from banned serial ${root.serial}` });
  });

  test('an ID ban during a renewal refuses it without a serial ban of its own (the ID ban covers it)', async () => {
    const key = generateKeyPair();
    const root = await attest(key);
    onCheckStored = async (serial) => {
      if (serial === root.serial) await revocations.ban({ kind: 'spiffe_id', value: WEB, reason: 'gone', createdBy: 'alice' });
    };
    expect(await codeOf(renew(key, root))).toBe('TESSERA_ERR_REVOCATION_ID_BANNED');
    expect(serials()).toEqual([]);
  });
});
