// The gRPC workload of the long-lived streams test and soak (tessera.bench.v1.Streams): the app, a grpc-js server
// that answers every call shape and reports the x-forwarded-client-cert each call arrived with, and client drivers
// that keep server, client and bidi streams open, checking every message in order and counting broken streams.
import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { loadProtoDefinition } from '../../shared-io/proto-loader.js';

/** The bench's own workload, not the product's contract: it lives in bench/proto, outside proto/. */
export const STREAMS_PROTO = 'tessera/bench/v1/streams.proto';

export interface Note {
  seq: number;
  text: string;
  xfcc: string;
}
export interface CallEnd {
  state: 'open' | 'completed' | 'cancelled';
  /** The deadline the app saw, ms since the epoch (a string: 64-bit integers load as strings); "0" = none. */
  deadline_ms: string;
}
type Callback<T> = (e: grpc.ServiceError | null, r: T) => void;
export type StreamsClient = grpc.Client & {
  Hello(m: Partial<Note>, o: grpc.CallOptions, cb: Callback<Note>): grpc.ClientUnaryCall;
  Watch(m: { count: number; interval_ms: number; tag?: string }, o?: grpc.CallOptions): grpc.ClientReadableStream<Note>;
  Upload(cb: Callback<Note>): grpc.ClientWritableStream<Partial<Note>>;
  Chat(o?: grpc.CallOptions): grpc.ClientDuplexStream<Partial<Note>, Note>;
  Ended(m: { tag: string }, cb: Callback<CallEnd>): grpc.ClientUnaryCall;
};

function service(): grpc.ServiceClientConstructor {
  const pkg = grpc.loadPackageDefinition(loadProtoDefinition(STREAMS_PROTO, 'bench/proto')) as unknown as { tessera: { bench: { v1: { Streams: grpc.ServiceClientConstructor } } } };
  return pkg.tessera.bench.v1.Streams;
}

/** A plaintext (h2c) client, as an app talks to its sidecar's outbound listener. */
export function streamsClient(address: string): StreamsClient {
  const Streams = service();
  return new Streams(address, grpc.credentials.createInsecure()) as unknown as StreamsClient;
}

const xfccOf = (call: { metadata: grpc.Metadata }) => String(call.metadata.get('x-forwarded-client-cert')[0] ?? '');

/** The app behind the inbound sidecar. */
export class StreamsApp {
  readonly server = new grpc.Server();
  readonly #ended = new Map<string, CallEnd>();
  #port = 0;

  get port(): number {
    return this.#port;
  }

  async start(): Promise<number> {
    const watch = (call: grpc.ServerWritableStream<{ count: number; interval_ms: number; tag: string }, Note>) => {
      const { count, interval_ms: every, tag } = call.request;
      const deadline = call.getDeadline();
      const end: CallEnd = { state: 'open', deadline_ms: String(deadline instanceof Date ? deadline.getTime() : Number.isFinite(deadline) ? deadline : 0) };
      if (tag) this.#ended.set(tag, end);
      let seq = 0;
      let timer: NodeJS.Timeout | undefined;
      const send = () => {
        if (call.cancelled) return;
        call.write({ seq: seq++, text: 'tick', xfcc: xfccOf(call) });
        if (count !== 0 && seq >= count) {
          end.state = 'completed';
          call.end();
          return;
        }
        timer = setTimeout(send, every);
      };
      call.on('cancelled', () => {
        clearTimeout(timer);
        if (end.state === 'open') end.state = 'cancelled';
      });
      send();
    };
    this.server.addService(service().service, {
      Hello: (call: grpc.ServerUnaryCall<Note, Note>, cb: grpc.sendUnaryData<Note>) => cb(null, { seq: call.request.seq, text: call.request.text, xfcc: xfccOf(call) }),
      Watch: watch,
      Upload: (call: grpc.ServerReadableStream<Note, Note>, cb: grpc.sendUnaryData<Note>) => {
        let n = 0;
        let inOrder = true;
        call.on('data', (m: Note) => {
          if (m.seq !== n) inOrder = false;
          n++;
        });
        call.on('end', () => cb(null, { seq: n, text: inOrder ? 'in-order' : 'out-of-order', xfcc: xfccOf(call) }));
      },
      Chat: (call: grpc.ServerDuplexStream<Note, Note>) => {
        call.on('data', (m: Note) => call.write({ seq: m.seq, text: m.text, xfcc: xfccOf(call) }));
        call.on('end', () => call.end());
      },
      Ended: (call: grpc.ServerUnaryCall<{ tag: string }, CallEnd>, cb: grpc.sendUnaryData<CallEnd>) => cb(null, this.#ended.get(call.request.tag) ?? { state: 'open', deadline_ms: '0' }),
    });
    this.#port = await new Promise<number>((resolve, reject) => this.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    return this.#port;
  }

  close(): void {
    this.server.forceShutdown();
  }
}

/** What the drivers saw: streams opened and completed, messages checked, and every stream that broke. */
export class StreamTally {
  opened = 0;
  completed = 0;
  messages = 0;
  readonly broken: string[] = [];

  fail(kind: string, why: string): void {
    this.broken.push(`${kind}: ${why}`);
  }
}

/** A stream kept open until `finish()`, which ends it cleanly and resolves once its end was seen as expected. */
export interface OpenStream {
  readonly kind: string;
  /** Messages checked so far on this stream. */
  readonly messages: () => number;
  finish(): Promise<void>;
}

/** Settles a stream once: its first failure, or its clean end, is what the tally records. */
function streamEnd(tally: StreamTally, kind: string): { fail: (why: string) => void; done: () => void; settled: Promise<void>; readonly over: boolean } {
  let over = false;
  let resolve: () => void = () => undefined;
  const settled = new Promise<void>((r) => {
    resolve = r;
  });
  return {
    settled,
    get over() {
      return over;
    },
    fail(why) {
      if (over) return;
      over = true;
      tally.fail(kind, why);
      resolve();
    },
    done() {
      if (over) return;
      over = true;
      tally.completed++;
      resolve();
    },
  };
}

const describe = (e: grpc.ServiceError) => `${grpc.status[e.code] ?? e.code} ${e.details}`;

/** Writes a numbered note every `everyMs`; finish() half-closes the call and resolves once its end was judged. */
function pacedWriter(call: grpc.ClientWritableStream<Partial<Note>>, end: ReturnType<typeof streamEnd>, everyMs: number, text: string) {
  let sent = 0;
  let ending = false;
  const timer = setInterval(() => {
    if (!ending && !end.over) call.write({ seq: sent++, text });
  }, everyMs);
  end.settled.then(() => clearInterval(timer));
  return {
    sent: () => sent,
    ending: () => ending,
    finish(): Promise<void> {
      ending = true;
      clearInterval(timer);
      call.end();
      return end.settled;
    },
  };
}

/** Bidi: a note every `everyMs`, each echo checked in order; finish() half-closes and awaits the server's end. */
export function openChat(client: StreamsClient, tally: StreamTally, everyMs: number): OpenStream {
  tally.opened++;
  const end = streamEnd(tally, 'chat');
  const call = client.Chat();
  const writer = pacedWriter(call, end, everyMs, 'ping');
  let got = 0;
  call.on('data', (m: Note) => {
    if (m.seq !== got) end.fail(`echo ${m.seq} where ${got} was expected`);
    got++;
    tally.messages++;
  });
  call.on('error', (e: grpc.ServiceError) => end.fail(describe(e)));
  call.on('end', () => (got === writer.sent() ? end.done() : end.fail(`ended after ${got} of ${writer.sent()} echoes`)));
  return { kind: 'chat', messages: () => got, finish: writer.finish };
}

/**
 * Server stream with no end of its own (count 0), a note every `everyMs`, checked in order. finish() cancels it:
 * the CANCELLED that follows is the expected end, anything before it a break.
 */
export function openWatch(client: StreamsClient, tally: StreamTally, everyMs: number): OpenStream {
  tally.opened++;
  const end = streamEnd(tally, 'watch');
  const call = client.Watch({ count: 0, interval_ms: everyMs });
  let got = 0;
  let ending = false;
  call.on('data', (m: Note) => {
    if (m.seq !== got) end.fail(`note ${m.seq} where ${got} was expected`);
    got++;
    tally.messages++;
  });
  call.on('error', (e: grpc.ServiceError) => (ending && e.code === grpc.status.CANCELLED ? end.done() : end.fail(describe(e))));
  call.on('end', () => (ending ? end.done() : end.fail('ended by the server')));
  return {
    kind: 'watch',
    messages: () => got,
    finish() {
      ending = true;
      call.cancel();
      return end.settled;
    },
  };
}

/** Client stream: a note every `everyMs`; finish() half-closes and checks the server counted every one in order. */
export function openUpload(client: StreamsClient, tally: StreamTally, everyMs: number): OpenStream {
  tally.opened++;
  const end = streamEnd(tally, 'upload');
  const call = client.Upload((e, r) => {
    if (e) return end.fail(describe(e));
    if (!writer.ending()) return end.fail('answered before the client finished');
    if (r.seq !== writer.sent() || r.text !== 'in-order') return end.fail(`server counted ${r.seq} (${r.text}) of ${writer.sent()}`);
    tally.messages += r.seq;
    end.done();
  });
  const writer = pacedWriter(call, end, everyMs, 'chunk');
  return { kind: 'upload', messages: writer.sent, finish: writer.finish };
}

/** The Hash= of the x-forwarded-client-cert a new unary call arrived with: the caller SVID its connection used. */
export function presentedHash(client: StreamsClient, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    client.Hello({ seq: 0, text: 'who' }, { deadline: Date.now() + timeoutMs }, (e, r) => {
      if (e) return reject(new Error(`Hello failed: ${describe(e)}`));
      const m = /Hash=([0-9a-f]{64})/.exec(r.xfcc);
      return m ? resolve(m[1]!) : reject(new Error(`no Hash in x-forwarded-client-cert "${r.xfcc}"`));
    });
  });
}

/** How the app saw the call tagged `tag` end. */
export function callEnd(client: StreamsClient, tag: string): Promise<CallEnd> {
  return new Promise((resolve, reject) => client.Ended({ tag }, (e, r) => (e ? reject(e) : resolve(r))));
}

type WorkloadClient = grpc.Client & { FetchX509SVID(r: object, md: grpc.Metadata): grpc.ClientReadableStream<{ svids: { x509_svid: Buffer }[] }> };

/**
 * Follows a proxy's SPIFFE Workload API (a generic client of the public proto on its Unix socket) and fills
 * `leaves` with serial → sha256 of each SVID leaf it hands out: the Hash= an inbound sidecar puts in
 * x-forwarded-client-cert for a connection that presented it. Returns the function that stops following.
 */
export function watchLeafHashes(socketPath: string, leaves: Map<string, string>): () => void {
  const Wl = (grpc.loadPackageDefinition(loadProtoDefinition('spiffe/workload/workload.proto')) as unknown as { SpiffeWorkloadAPI: grpc.ServiceClientConstructor }).SpiffeWorkloadAPI;
  const client = new Wl(`unix://${socketPath}`, grpc.credentials.createInsecure()) as unknown as WorkloadClient;
  const md = new grpc.Metadata();
  md.set('workload.spiffe.io', 'true');
  const feed = client.FetchX509SVID({}, md);
  feed.on('data', (m) => {
    const leaf = new X509Certificate(m.svids[0]!.x509_svid);
    leaves.set(leaf.serialNumber.toLowerCase(), leaf.fingerprint256.replaceAll(':', '').toLowerCase());
  });
  feed.on('error', () => undefined);
  return () => {
    feed.cancel();
    client.close();
  };
}
