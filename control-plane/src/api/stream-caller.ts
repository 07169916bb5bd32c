// Who is calling a streaming method (Config/Watch, Discovery/Watch and Register): the client SVID presented over
// mTLS, verified now and checked against operator bans; and the set of open streams so authenticated, each ended
// when its SVID expires or its caller is banned, all ended with OK at shutdown, and bounded per SPIFFE ID.
import type * as grpc from '@grpc/grpc-js';
import { TesseraError, isTesseraError } from '../../../common/errors.js';
import type { SvidAttestor, VerifiedPeer } from '../attestation/svid-attestor.js';
import { DEFAULT_MAX_STREAMS_PER_ID } from '../config/cp-config.js';
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
}

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
 * (TESSERA_ERR_STREAMS_PER_ID_LIMIT), on the record and counted as the method's other refusals.
 */
export function admitStream(call: Pick<grpc.ServerWritableStream<unknown, unknown>, 'getPeer' | 'emit'>, peer: VerifiedPeer, streams: Pick<OpenStreams<OpenStream>, 'openBy'>, deps: StreamCallerDeps): boolean {
  const id = peer.spiffeId.toString();
  const max = deps.maxStreamsPerId ?? DEFAULT_MAX_STREAMS_PER_ID;
  if (streams.openBy(id) < max) return true;
  deps.onRefused?.('TESSERA_ERR_STREAMS_PER_ID_LIMIT', call.getPeer(), `${max} streams of this method open already`, id);
  call.emit('error', toGrpcError(new TesseraError('TESSERA_ERR_STREAMS_PER_ID_LIMIT')));
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
