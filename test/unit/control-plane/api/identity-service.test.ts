// Identity/SignSvid over a real gRPC server and grpc-js clients: a join token buys an SVID for exactly its ID with
// the requested lifetime (clamped to the maximum), a client SVID renews itself, and refused requests (spent token,
// oversized or undecodable message, missing CSR) get their status and stable code without reaching the signer.
import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, test } from 'vitest';
import { createCsr } from '../../../../common/pki/csr.js';
import { generateKeyPair } from '../../../../common/pki/keys.js';
import { WEB_ID, enroll, joinToken, rawSignSvid } from '../../../helpers/api-client.js';
import { HOUR_MS, apiPerFile } from '../../../helpers/control-plane-parts.js';
import { controlPlaneClients, errorCode, signSvid } from '../../../helpers/control-plane.js';
import { FakeTime } from '../../../helpers/fake-time.js';

describe('Identity/SignSvid', () => {
  const time = new FakeTime(Math.floor(Date.now() / 1000) * 1000);
  const t = apiPerFile(time, { maxRequestBytes: 4096 });

  const sign = async (req: Record<string, unknown>, svid?: Parameters<typeof controlPlaneClients>[2]) => {
    const c = controlPlaneClients(t.api.server.address, t.api.bundlePem(), svid);
    try {
      return await signSvid(c.identity, req);
    } finally {
      c.close();
    }
  };

  test('a join token buys a leaf for its ID, signed by the active intermediate, valid the configured hour', async () => {
    const { answer } = await enroll(t.api, time.nowMs());
    const res = answer.res!;
    expect(res.spiffe_id).toBe(WEB_ID);
    const [leafDer, interDer] = res.svid_chain;
    const leaf = new X509Certificate(leafDer!);
    expect(leaf.subjectAltName).toBe(`URI:${WEB_ID}`);
    expect(leaf.serialNumber.toLowerCase()).toBe(res.serial);
    expect(new X509Certificate(interDer!).fingerprint256).toBe(t.api.ca.current().signer.intermediate.fingerprint256);
    expect(Number(res.not_after_unix_ms)).toBe(time.nowMs() + HOUR_MS);
    expect(leaf.validToDate.getTime()).toBe(time.nowMs() + HOUR_MS);
    expect(res.bundles.map((b) => [b.trust_domain, b.x509_authorities.length])).toEqual([['example.org', 1]]);
    // Recorded in the inventory, against the signing authority.
    expect(await t.api.store.inventory.find(res.serial)).toMatchObject({ spiffeId: WEB_ID, authorityId: t.api.ca.current().signer.authorityId, kind: 'attest' });
  });

  test('ttl_seconds can shorten the lifetime, never lengthen it past the configured one', async () => {
    const key = generateKeyPair();
    const csr = await createCsr(key, { uriSans: [WEB_ID] });
    const short = await sign({ csr, join_token: await joinToken(t.api, time.nowMs()), ttl_seconds: 120 });
    expect(Number(short.res!.not_after_unix_ms)).toBe(time.nowMs() + 120_000);
    const long = await sign({ csr, join_token: await joinToken(t.api, time.nowMs()), ttl_seconds: 10 * 366 * 24 * 3600 });
    expect(Number(long.res!.not_after_unix_ms)).toBe(time.nowMs() + HOUR_MS);
  });

  test('a client SVID renews itself without other evidence; the same token a second time is refused', async () => {
    const { svid } = await enroll(t.api, time.nowMs());
    const key = generateKeyPair();
    const renewed = await sign({ csr: await createCsr(key, { uriSans: [WEB_ID] }) }, svid);
    expect(renewed.err).toBeNull();
    expect((await t.api.store.inventory.find(renewed.res!.serial))?.kind).toBe('renew');

    const token = await joinToken(t.api, time.nowMs());
    const csr = await createCsr(key, { uriSans: [WEB_ID] });
    expect((await sign({ csr, join_token: token })).err).toBeNull();
    const again = await sign({ csr, join_token: token });
    expect([again.err?.code, errorCode(again.err)]).toEqual([grpc.status.UNAUTHENTICATED, 'TESSERA_ERR_ATTESTATION_TOKEN_USED']);
  });

  test('no evidence at all, and a CSR for another ID, are refused with their codes', async () => {
    const key = generateKeyPair();
    const none = await sign({ csr: await createCsr(key, { uriSans: [WEB_ID] }) });
    expect([none.err?.code, errorCode(none.err)]).toEqual([grpc.status.UNAUTHENTICATED, 'TESSERA_ERR_ATTESTATION_NO_EVIDENCE']);
    const foreign = await sign({ csr: await createCsr(key, { uriSans: ['spiffe://example.org/other'] }), join_token: await joinToken(t.api, time.nowMs()) });
    expect([foreign.err?.code, errorCode(foreign.err)]).toEqual([grpc.status.INVALID_ARGUMENT, 'TESSERA_ERR_ISSUANCE_CSR_FOREIGN_SAN']);
  });

  test('a request without a CSR is a bad request; an undecodable or oversized one never reaches the issuer', async () => {
    const empty = await sign({ join_token: await joinToken(t.api, time.nowMs()) });
    expect([empty.err?.code, errorCode(empty.err)]).toEqual([grpc.status.INVALID_ARGUMENT, 'TESSERA_ERR_ISSUANCE_BAD_REQUEST']);

    t.api.rejected.length = 0;
    const issued = (await t.api.store.inventory.all()).length;
    const garbage = await rawSignSvid(t.api, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])); // field 1, length past the end
    expect([garbage?.code, errorCode(garbage)]).toEqual([grpc.status.INVALID_ARGUMENT, 'TESSERA_ERR_ISSUANCE_BAD_REQUEST']);
    const big = await rawSignSvid(t.api, Buffer.alloc(4097));
    expect([big?.code, errorCode(big)]).toEqual([grpc.status.RESOURCE_EXHAUSTED, 'TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE']);
    expect(t.api.rejected).toEqual([
      { code: 'TESSERA_ERR_ISSUANCE_BAD_REQUEST', size: 6 },
      { code: 'TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE', size: 4097 },
    ]);
    // The catalogue text, not internal detail, is what the peer reads.
    expect(big?.details).toBe('TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE: The request is larger than the control plane accepts.');
    expect(await t.api.store.inventory.all()).toHaveLength(issued);
  });
});
