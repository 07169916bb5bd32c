// Identity/SignSvid's caller-gone check reads the call's deadline on the injected deadline clock (the real one is
// Date.now, grpc-js's): with that clock set past the deadline while the caller still waits, nothing is committed for
// the call, its join token stays unspent, and the retry with the same token buys the SVID. Real gRPC server and
// client; the deadline clock is test/helpers/fake-time.ts, so no test waits for a deadline to pass.
import * as grpc from '@grpc/grpc-js';
import { describe, expect, test } from 'vitest';
import { createCsr } from '../../../../common/pki/csr.js';
import { generateKeyPair } from '../../../../common/pki/keys.js';
import { WEB_ID, joinToken } from '../../../helpers/api-client.js';
import { apiPerFile } from '../../../helpers/control-plane-parts.js';
import { controlPlaneClients, errorCode, signSvid } from '../../../helpers/control-plane.js';
import { FakeTime } from '../../../helpers/fake-time.js';

describe('Identity/SignSvid and the deadline clock', () => {
  const time = new FakeTime(Math.floor(Date.now() / 1000) * 1000);
  const deadlines = new FakeTime(Date.now());
  const t = apiPerFile(time, { deadlineClock: deadlines });

  const sign = async (req: Record<string, unknown>) => {
    const c = controlPlaneClients(t.api.server.address, t.api.bundlePem());
    try {
      return await signSvid(c.identity, req); // deadline: Date.now() + 10 s
    } finally {
      c.close();
    }
  };

  test('a call whose deadline has passed by the deadline clock commits nothing: CALLER_GONE, token unspent, the retry is signed', async () => {
    const token = await joinToken(t.api, time.nowMs());
    const csr = await createCsr(generateKeyPair(), { uriSans: [WEB_ID] });
    const before = (await t.api.store.inventory.all()).length;
    // By the deadline clock the call's 10 s are over: the caller counts as gone, though it still waits for the answer.
    deadlines.set(Date.now() + 60_000);
    const late = await sign({ csr, join_token: token });
    expect([late.err?.code, errorCode(late.err)]).toEqual([grpc.status.CANCELLED, 'TESSERA_ERR_ISSUANCE_CALLER_GONE']);
    expect((await t.api.store.inventory.all()).length).toBe(before);
    // Within its deadline again: the same token buys the SVID (it was not spent for the call that gave up).
    deadlines.set(Date.now());
    const retry = await sign({ csr, join_token: token });
    expect(retry.err).toBeNull();
    expect(retry.res?.spiffe_id).toBe(WEB_ID);
    expect((await t.api.store.inventory.find(retry.res!.serial))?.kind).toBe('attest');
  });
});
