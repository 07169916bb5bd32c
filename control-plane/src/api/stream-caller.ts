// Who is calling a streaming method (Config/Watch, Discovery/Watch and Register): the client SVID presented over
// mTLS, verified (a chain verified a moment ago against the same bundle, inside its validity, reuses its verdict:
// svid-verdicts.ts) and checked against operator bans on every open; and the set of open streams so authenticated, each ended
// when its SVID expires or its caller is banned, all ended with OK at shutdown, and bounded per SPIFFE ID: in how
// many are open at once and in how fast new ones are opened.
import type * as grpc from '@grpc/grpc-js';
import { TesseraError, isTesseraError } from '../../../common/errors.js';
import type { SvidAttestor, VerifiedPeer } from '../attestation/svid-attestor.js';
import { DEFAULT_MAX_STREAMS_PER_ID, DEFAULT_STREAM_OPENS_PER_SECOND } from '../config/cp-config.js';
import type { RateLimit, RateLimiter } from '../issuance/rate-limiter.js';
import { toGrpcError } from './grpc-status.js';
import { svidRefusal } from './svid-refusal.js';

export interface StreamCallerDeps {
  readonly svids: SvidAttestor;
  readonly peerChain: (call: { getPeer(): string }) => Buffer[];
  /** Operator bans: throws TESSERA_ERR_REVOCATION_* when the caller's ID or SVID serial is banned. */
  readonly admit: (spiffeId: string, serial: string) => void;
  /** A refused call: its code, the peer address, a detail, and the caller's proven ID once it is known. */
  readonly onRefused?: (code: string, caller: string, detail: string | undefined, spiffeId?: string) => void;
  /**
   * Open streams of one method one SPIFFE ID may hold at once (default DEFAULT_MAX_STREAMS_PER_ID): every replica of
   * a Deployment shares its ID, so this is per ID, not per proxy, and large; a compromised workload's SVID opened
   * thousands of Watch streams at ~20 KB each before it.
   */
  readonly maxStreamsPerId?: number;
  /** Opens of the method one SPIFFE ID may make a second once its burst is spent (limits.streamOpensPerSecond). */
  readonly streamOpensPerSecond?: number;
  /** Opens of the method one SPIFFE ID may make (default streamOpenRate(this)); tests give a small one. */
  readonly openRate?: RateLimit;
}

/**
 * Opens of one method one SPIFFE ID may make: a burst of maxStreamsPerId (every replica of a Deployment reconnecting
 * at once after a restart or failover), then limits.streamOpensPerSecond. Every open costs a first message (and the
 * first open of a chain an SVID chain check); an outside audit opened and cancelled Watch streams in a loop from one workload and held the control
 * plane's event loop for seconds at a time. A fixed 256 then 10 a second made 1,024 proxies of one ID wait ~75 s after
 * a failover (audit 40a F4); opens of one ID share a cached snapshot, so the burst is cheap now.
 */
export function streamOpenRate(o: Pick<StreamCallerDeps, 'maxStreamsPerId' | 'streamOpensPerSecond'>): RateLimit {
  return { burst: o.maxStreamsPerId ?? DEFAULT_MAX_STREAMS_PER_ID, perMinute: (o.streamOpensPerSecond ?? DEFAULT_STREAM_OPENS_PER_SECOND) * 60 };
}

/** Rate buckets kept before the full ones are dropped. */
const SWEEP_ABOVE = 1024;

/** The verified caller, or undefined after the call was answered with UNAUTHENTICATED (or the ban's status). */
export function authenticateStream(call: Pick<grpc.ServerWritableStream<unknown, unknown>, 'getPeer' | 'emit'>, deps: StreamCallerDeps): VerifiedPeer | undefined {
  try {
    const peer = deps.svids.attest(deps.peerChain(call));
    deps.admit(peer.spiffeId.toString(), peer.serial);
    return peer;
  } catch (e) {
    const err = e as TesseraError;
    deps.onRefused?.(err.code, call.getPeer(), typeof err.details?.['reason'] === 'string' ? err.details['reason'] : undefined);
    call.emit('error', toGrpcError(svidRefusal(err)));
    return undefined;
  }
}

/**
 * Whether `peer` may open one more stream in `streams`; if not, the call is refused with RESOURCE_EXHAUSTED
 * (TESSERA_ERR_STREAMS_PER_ID_LIMIT: too many open; TESSERA_ERR_STREAM_OPEN_RATE_LIMITED: opened too fast), on the
 * record and counted as the method's other refusals.
 */
export function admitStream(call: Pick<grpc.ServerWritableStream<unknown, unknown>, 'getPeer' | 'emit'>, peer: VerifiedPeer, streams: Pick<OpenStreams<OpenStream>, 'openBy' | 'takeOpen'>, deps: StreamCallerDeps): boolean {
  const id = peer.spiffeId.toString();
  const max = deps.maxStreamsPerId ?? DEFAULT_MAX_STREAMS_PER_ID;
  const refused = streams.openBy(id) >= max ? { code: 'TESSERA_ERR_STREAMS_PER_ID_LIMIT' as const, detail: `${max} streams of this method open already` } : streams.takeOpen(id) ? undefined : { code: 'TESSERA_ERR_STREAM_OPEN_RATE_LIMITED' as const, detail: 'streams of this method opened too fast' };
  if (!refused) return true;
  deps.onRefused?.(refused.code, call.getPeer(), refused.detail, id);
  call.emit('error', toGrpcError(new TesseraError(refused.code)));
  return false;
}

/** One open authenticated stream. */
export interface OpenStream {
  readonly peer: VerifiedPeer;
  /** What the set uses of a server-streaming or bidirectional call. */
  readonly call: { readonly cancelled?: boolean; on(event: 'cancelled' | 'close' | 'error', fn: () => void): unknown; emit(event: 'error', e: unknown): boolean; end(): unknown };
}

export interface OpenStreamsOptions<S> {
  /** The number of open streams, after each change. */
  readonly onCount?: (n: number) => void;
  /** A stream left the set (ended by either side, dropped, or at shutdown). */
  readonly onRemoved?: (s: S) => void;
  /** How fast one SPIFFE ID may open streams (a bucket per ID; see DEFAULT_STREAM_OPEN_RATE). */
  readonly opens?: RateLimiter;
}

/** The open streams of one method; a stream leaves the set when its call ends, whoever ends it. */
export class OpenStreams<S extends OpenStream> implements Iterable<S> {
  readonly #set = new Set<S>();
  /** Open streams per SPIFFE ID (an ID with none has no entry). */
  readonly #byId = new Map<string, number>();
  readonly #o: OpenStreamsOptions<S>;

  constructor(opts: OpenStreamsOptions<S> = {}) {
    this.#o = opts;
  }

  get size(): number {
    return this.#set.size;
  }

  has(s: S): boolean {
    return this.#set.has(s);
  }

  [Symbol.iterator](): Iterator<S> {
    return this.#set[Symbol.iterator]();
  }

  /** Takes one open from this SPIFFE ID's rate; false when it has opened too many too fast. */
  takeOpen(spiffeId: string): boolean {
    const opens = this.#o.opens;
    if (!opens) return true;
    if (opens.size > SWEEP_ABOVE) opens.sweep();
    return opens.take(spiffeId);
  }

  /** Streams open under this SPIFFE ID. */
  openBy(spiffeId: string): number {
    return this.#byId.get(spiffeId) ?? 0;
  }

  add(s: S): void {
    if (this.#set.has(s)) return;
    this.#set.add(s);
    const id = s.peer.spiffeId.toString();
    this.#byId.set(id, (this.#byId.get(id) ?? 0) + 1);
    this.#o.onCount?.(this.#set.size);
    const remove = () => this.remove(s);
    s.call.on('cancelled', remove);
    s.call.on('close', remove);
    s.call.on('error', remove);
    // A call the client cancelled before its handler ran has already emitted 'cancelled': it would hold its ID's
    // slot (limits.maxStreamsPerId) until the connection closed, so a caller cancelling fast was refused for good.
    if (s.call.cancelled) this.remove(s);
  }

  /** Takes the stream out of the set (its call is left as it is); false when it was not in it. */
  remove(s: S): boolean {
    if (!this.#set.delete(s)) return false;
    const id = s.peer.spiffeId.toString();
    const left = (this.#byId.get(id) ?? 1) - 1;
    if (left > 0) this.#byId.set(id, left);
    else this.#byId.delete(id);
    this.#o.onCount?.(this.#set.size);
    this.#o.onRemoved?.(s);
    return true;
  }

  /** Ends the stream with the error's status. */
  drop(s: S, e: TesseraError): void {
    this.remove(s);
    s.call.emit('error', toGrpcError(e));
  }

  /** Ends the streams whose client SVID has expired and, given `admit`, those whose caller is banned now. */
  sweep(nowMs: number, admit?: (spiffeId: string, serial: string) => void): void {
    for (const s of [...this.#set]) {
      try {
        if (s.peer.notAfterMs <= nowMs) throw new TesseraError('TESSERA_ERR_ATTESTATION_SVID_INVALID', 'the client SVID expired');
        admit?.(s.peer.spiffeId.toString(), s.peer.serial);
      } catch (e) {
        this.drop(s, isTesseraError(e) ? e : new TesseraError('TESSERA_ERR_ISSUANCE_INTERNAL'));
      }
    }
  }

  /** Ends every stream with OK (shutdown). */
  endAll(): void {
    for (const s of [...this.#set]) {
      this.remove(s);
      s.call.end();
    }
  }
}
