// Who is calling a streaming method (Config/Watch, Discovery/Watch and Register): the client SVID presented over
// mTLS, verified now and checked against operator bans; and the set of open streams so authenticated, each ended
// when its SVID expires or its caller is banned, all ended with OK at shutdown.
import type * as grpc from '@grpc/grpc-js';
import { TesseraError, isTesseraError } from '../../../common/errors.js';
import type { SvidAttestor, VerifiedPeer } from '../attestation/svid-attestor.js';
import { toGrpcError } from './grpc-status.js';

export interface StreamCallerDeps {
  readonly svids: SvidAttestor;
  readonly peerChain: (call: { getPeer(): string }) => Buffer[];
  /** Operator bans: throws TESSERA_ERR_REVOCATION_* when the caller's ID or SVID serial is banned. */
  readonly admit: (spiffeId: string, serial: string) => void;
  /** A refused call: its code, the peer address, a detail, and the caller's proven ID once it is known. */
  readonly onRefused?: (code: string, caller: string, detail: string | undefined, spiffeId?: string) => void;
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
    // A ban is told as such (the operator's decision, not a fault of the SVID); other failures stay generic.
    const told = err.code?.startsWith('TESSERA_ERR_REVOCATION_') ? err : new TesseraError('TESSERA_ERR_ATTESTATION_SVID_INVALID');
    call.emit('error', toGrpcError(told));
    return undefined;
  }
}

/** One open authenticated stream. */
export interface OpenStream {
  readonly peer: VerifiedPeer;
  /** What the set uses of a server-streaming or bidirectional call. */
  readonly call: { on(event: 'cancelled' | 'close' | 'error', fn: () => void): unknown; emit(event: 'error', e: unknown): boolean; end(): unknown };
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

  add(s: S): void {
    this.#set.add(s);
    this.#o.onCount?.(this.#set.size);
    const remove = () => this.remove(s);
    s.call.on('cancelled', remove);
    s.call.on('close', remove);
    s.call.on('error', remove);
  }

  /** Takes the stream out of the set (its call is left as it is); false when it was not in it. */
  remove(s: S): boolean {
    if (!this.#set.delete(s)) return false;
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
