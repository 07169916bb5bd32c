// A hostile h2c app cannot crash a real `tessera proxy` with a GOAWAY and a head the proxy refuses in one read. On
// Node 24.20 a client http2 session that resets, closes or destroys a stream from inside its own GOAWAY NO_ERROR
// handling (a microtask included) frees nghttp2 memory twice (nodejs/node#65093, fixed in 24.21), and the proxy is
// the client session toward the app: refuseHead (h2-forward.ts) cancels the upstream stream from that session's own
// frame callbacks, and cancelUpstream (request-end.ts) destroys one whose request the client is still uploading. So
// the app answers the proxy's request, while the client's body is still open, with one write of GOAWAY (last stream
// id 1, so the stream stays open) and a head node:http2 will not relay (:status 600, or a 9th 1xx head: more than
// MAX_INTERIM_HEADS), either order, NO_ERROR and other codes; also a GOAWAY that refuses the stream itself (last
// stream id 0), and two uploads on one session refused in the same read. The proxy must answer the client 502 and
// stay up: no exit, no signal, no "Assertion" on stderr, and the next request through the same listener is
// answered. Edge h2 route (anonymous TLS client) and the inbound http2 listener (mTLS peer). Real processes, raw
// frames over loopback. A guard: no crash was reproduced on 24.20 with the deferred cancel, the synchronous destroy
// (00f44fc) or close(CANCEL) (before it), 25 rounds of each case, twice; a proxy that dies fails every case.
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type H2Stage, startH2Stage } from '../helpers/h2-stage.js';
import type { ProxyProcess } from '../helpers/proxy-process.js';
import { h2Frame as frame, hpackBlock as block, rawH2Server } from '../helpers/raw-h2-app.js';

const [HEADERS, GOAWAY] = [1, 7];
const [END_STREAM, END_HEADERS] = [0x1, 0x4];
const { NGHTTP2_NO_ERROR, NGHTTP2_INTERNAL_ERROR, NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;
/** Each case this many times in a row (one crash ends the process, so every round after it fails too). */
const ROUNDS = 3;

let stage: H2Stage;
let api: ProxyProcess;
let web: ProxyProcess;
let webCred = { cert: '', key: '' };
const servers: net.Server[] = [];

/** GOAWAY whose last stream id is the last request's (so its stream stays open), or `last`. */
function goaway(code: number, last: number): Buffer {
  const p = Buffer.alloc(8);
  p.writeUInt32BE(last, 0);
  p.writeUInt32BE(code, 4);
  return frame(GOAWAY, 0, 0, p);
}
/** A final head node:http2's respond() throws on; no END_STREAM, so the proxy must reset the stream itself. */
const status600 = (id: number) => frame(HEADERS, END_HEADERS, id, block([[':status', '600']]));
/** One 1xx head more than MAX_INTERIM_HEADS (8): the last is refused. */
const interims = (id: number) => Buffer.concat(Array.from({ length: 9 }, () => frame(HEADERS, END_HEADERS, id, block([[':status', '103']]))));

interface Hostile {
  /** The app's one write, once it has the HEADERS of `ids` (the last is the newest stream). */
  readonly bytes: (ids: readonly number[]) => Buffer;
  /** Uploads at once on the proxy's one session to the app (1 unless said). */
  readonly uploads?: number;
  /** What the client may be answered: the refused head (502 bad_upstream_response), or the session's end first. */
  readonly reasons: readonly string[];
}
const REFUSED = ['bad_upstream_response'];
const REFUSED_OR_RESET = ['bad_upstream_response', 'upstream_reset'];
const last = (ids: readonly number[]) => ids[ids.length - 1]!;
const CASES: Record<string, Hostile> = {
  'GOAWAY NO_ERROR, then :status 600': { bytes: (ids) => Buffer.concat([goaway(NGHTTP2_NO_ERROR, last(ids)), status600(last(ids))]), reasons: REFUSED },
  ':status 600, then GOAWAY NO_ERROR': { bytes: (ids) => Buffer.concat([status600(last(ids)), goaway(NGHTTP2_NO_ERROR, last(ids))]), reasons: REFUSED },
  'GOAWAY NO_ERROR, then nine 103s': { bytes: (ids) => Buffer.concat([goaway(NGHTTP2_NO_ERROR, last(ids)), interims(last(ids))]), reasons: REFUSED },
  'nine 103s, then GOAWAY NO_ERROR': { bytes: (ids) => Buffer.concat([interims(last(ids)), goaway(NGHTTP2_NO_ERROR, last(ids))]), reasons: REFUSED },
  'GOAWAY INTERNAL_ERROR, then :status 600': { bytes: (ids) => Buffer.concat([goaway(NGHTTP2_INTERNAL_ERROR, last(ids)), status600(last(ids))]), reasons: REFUSED_OR_RESET },
  ':status 600, then GOAWAY ENHANCE_YOUR_CALM': { bytes: (ids) => Buffer.concat([status600(last(ids)), goaway(NGHTTP2_ENHANCE_YOUR_CALM, last(ids))]), reasons: REFUSED_OR_RESET },
  'GOAWAY ENHANCE_YOUR_CALM, then nine 103s': { bytes: (ids) => Buffer.concat([goaway(NGHTTP2_ENHANCE_YOUR_CALM, last(ids)), interims(last(ids))]), reasons: REFUSED_OR_RESET },
  // Its stream refused by the GOAWAY itself (nghttp2 closes it inside the read): sent again on a new session, twice.
  'GOAWAY NO_ERROR with last stream id 0, then :status 600': { bytes: (ids) => Buffer.concat([goaway(NGHTTP2_NO_ERROR, 0), status600(last(ids))]), reasons: ['upstream_reset'] },
  // Two streams of one session, both refused in the same read: the second cancel is the session's last stream.
  'two uploads, GOAWAY NO_ERROR, then :status 600 on both': { uploads: 2, bytes: (ids) => Buffer.concat([goaway(NGHTTP2_NO_ERROR, last(ids)), ...ids.map(status600)]), reasons: REFUSED },
  'two uploads, :status 600 on both, then GOAWAY NO_ERROR': { uploads: 2, bytes: (ids) => Buffer.concat([...ids.map(status600), goaway(NGHTTP2_NO_ERROR, last(ids))]), reasons: REFUSED },
};

/** What the raw app does with the next request: one of CASES, or a plain 200. */
let appMode: string = 'ok';

/** A raw h2c app answering every request's HEADERS as appMode says, in one write. */
function hostileApp(): net.Server {
  return rawH2Server((s) => {
    /** The request streams held until the case's write. */
    const ids: number[] = [];
    return (type, _flags, id) => {
      if (type !== HEADERS) return;
      const hostile = CASES[appMode];
      if (!hostile) s.write(frame(HEADERS, END_HEADERS | END_STREAM, id, block([[':status', '200']])));
      else if (ids.push(id) === (hostile.uploads ?? 1)) s.write(hostile.bytes(ids.splice(0)));
    };
  });
}

function listen(server: net.Server): Promise<number> {
  servers.push(server);
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as net.AddressInfo).port)));
}

beforeAll(async () => {
  const app = await listen(hostileApp());
  stage = await startH2Stage({
    inbound: { 'app-raw': app },
    edgeRoutes: () => [`{ host: "*", pathPrefix: /, upstream: 127.0.0.1:${app}, unsafePlaintext: true, protocol: http2 }`],
  });
  ({ api, web, webCred } = stage);
}, 60_000);

afterAll(async () => {
  await stage?.stop();
  for (const s of servers) s.close();
});

const SURFACES = [
  { name: 'edge h2 route', proxy: () => web, port: () => web.ports.get('edge/public')!, tls: () => ({ servername: 'a.example.test' }) },
  { name: 'inbound http2', proxy: () => api, port: () => api.ports.get('inbound/app-raw')!, tls: () => ({ servername: 'api', ...webCred }) },
];

/** One request on a new connection: `upload` keeps its body open (a client still uploading). Status and x-tessera-error. */
async function request(port: number, tlsOpts: object, path: string, upload: boolean): Promise<{ status: number; error: string | undefined }> {
  const c = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, ...tlsOpts });
  c.on('error', () => undefined);
  try {
    return await new Promise((resolve, reject) => {
      const req = c.request({ ':method': upload ? 'POST' : 'GET', ':path': path }, { endStream: !upload });
      req.on('error', reject);
      req.on('response', (h) => resolve({ status: Number(h[':status']), error: h['x-tessera-error'] as string | undefined }));
      req.on('close', () => reject(new Error(`stream closed without a response (rstCode ${req.rstCode})`)));
      if (upload) req.write('first part of a body not ended yet');
      setTimeout(() => reject(new Error('no response in 5 s')), 5_000).unref();
    });
  } finally {
    // On a later turn: this test's own client session is not destroyed from inside its frame handling.
    setImmediate(() => c.destroy());
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function expectAlive(p: ProxyProcess): void {
  expect({ exitCode: p.child.exitCode, signal: p.child.signalCode, assertion: /Assertion|Segmentation|SIGSEGV/.test(p.stderr()) }).toEqual({ exitCode: null, signal: null, assertion: false });
}

describe.each(SURFACES)('$name', (s) => {
  test.each(Object.keys(CASES))('%s while the client uploads: 502, the proxy stays up and serves the next request', async (name) => {
    for (let i = 0; i < ROUNDS; i++) {
      appMode = name;
      const uploads = Array.from({ length: CASES[name]!.uploads ?? 1 }, (_, j) => request(s.port(), s.tls(), `/public/hostile-${i}-${j}`, true));
      for (const got of await Promise.all(uploads)) {
        expect(got.status).toBe(502);
        expect(CASES[name]!.reasons).toContain(got.error);
      }
      await sleep(100); // a deferred cancel, and a crash, come after the answer
      expectAlive(s.proxy());
      appMode = 'ok';
      expect(await request(s.port(), s.tls(), `/public/next-${i}`, false)).toEqual({ status: 200, error: undefined });
      expectAlive(s.proxy());
    }
  });
});
