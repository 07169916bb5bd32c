// Clients of an in-process control-plane API (test/helpers/control-plane-parts.ts): a workload key and the SVID a
// join token buys for it, a Config/Watch stream collected as it arrives, and raw request bytes for refusals.
import type * as grpc from '@grpc/grpc-js';
import { createCsr } from '../../common/pki/csr.js';
import { type KeyPair, generateKeyPair, privateKeyPem } from '../../common/pki/keys.js';
import { encodePem } from '../../common/pki/pem.js';
import type { RunningApi } from './control-plane-parts.js';
import { type ClientSvid, type SignAnswer, controlPlaneClients, errorCode, signSvid } from './control-plane.js';

export const WEB_ID = 'spiffe://example.org/ns/default/sa/web';

/** A one-use join token for `id`, made in the API's store at its clock. */
export async function joinToken(api: RunningApi, nowMs: number, id = WEB_ID): Promise<string> {
  const token = `t-${Math.random().toString(36).slice(2)}`;
  await api.store.tokens.create(token, id, nowMs, 600_000);
  return token;
}

export interface Enrolled {
  readonly key: KeyPair;
  readonly answer: SignAnswer;
  readonly svid: ClientSvid;
}

/** Attests with a fresh join token and returns the SVID the API signed (throws on a refusal). */
export async function enroll(api: RunningApi, nowMs: number, id = WEB_ID): Promise<Enrolled> {
  const key = generateKeyPair();
  const c = controlPlaneClients(api.server.address, api.bundlePem());
  try {
    const answer = await signSvid(c.identity, { csr: await createCsr(key, { uriSans: [id] }), join_token: await joinToken(api, nowMs, id) });
    if (answer.err) throw new Error(`enroll: ${errorCode(answer.err)} ${answer.err.details}`);
    const chainPem = answer.res!.svid_chain.map((d) => encodePem('CERTIFICATE', d)).join('');
    return { key, answer, svid: { keyPem: privateKeyPem(key), chainPem } };
  } finally {
    c.close();
  }
}

export interface WatchedStream {
  /** Snapshots received so far. */
  readonly snapshots: { version: string; bundles: { x509_authorities: Buffer[] }[]; deny_list: { spiffe_ids: string[] }; policies: { name: string; json: string }[]; break_glass: { id: string }[] }[];
  /** Set when the stream ended: the status code and the tessera code it carried (undefined for OK). */
  ended(): { code: grpc.status; tesseraCode: string | undefined } | undefined;
  cancel(): void;
}

export function watch(api: RunningApi, svid?: ClientSvid): WatchedStream {
  const c = controlPlaneClients(api.server.address, api.bundlePem(), svid);
  const snapshots: WatchedStream['snapshots'] = [];
  let end: { code: grpc.status; tesseraCode: string | undefined } | undefined;
  const call = c.config.Watch!({}) as grpc.ClientReadableStream<WatchedStream['snapshots'][number]>;
  call.on('data', (m) => snapshots.push(m));
  call.on('error', (e: grpc.ServiceError) => {
    end ??= { code: e.code, tesseraCode: errorCode(e) };
  });
  call.on('status', (s: grpc.StatusObject) => {
    end ??= { code: s.code, tesseraCode: undefined };
    c.close();
  });
  return { snapshots, ended: () => end, cancel: () => call.cancel() };
}

/** Calls Identity/SignSvid with these exact request bytes (what a broken or hostile client sends). */
export function rawSignSvid(api: RunningApi, bytes: Buffer): Promise<grpc.ServiceError | null> {
  const c = controlPlaneClients(api.server.address, api.bundlePem());
  return new Promise((resolve) => {
    c.identity.makeUnaryRequest(
      '/tessera.identity.v1.Identity/SignSvid',
      (b: Buffer) => b,
      (b: Buffer) => b,
      bytes,
      { deadline: Date.now() + 10_000 },
      (err: grpc.ServiceError | null) => {
        c.close();
        resolve(err);
      },
    );
  });
}
