// grpc-js refuses, by itself, a request it cannot read: a message over its own receive limit (or one that
// decompresses past it), a compressed message that does not inflate or names an encoding it lacks, and on a
// single-request method (unary or server streaming) a second message or none before the half-close. Its answer has
// its own status and text (INTERNAL, UNIMPLEMENTED, RESOURCE_EXHAUSTED), no tessera-error-code, and the handler
// never runs, so nothing audits or counts it. ReadRefusalCall catches each and hands the handler a RejectedMessage
// instead, exactly as guardedService does for a message over its cap or one that does not decode: every request a
// server cannot read, on every method, gets the handler's coded answer, audit line and count. Shared by the control
// plane (its codes: TESSERA_ERR_ISSUANCE_*) and the proxy's Workload API, each with its own codes.
// Nothing more is read or buffered: grpc-js has stopped reading the message when it refuses it.
import * as grpc from '@grpc/grpc-js';
import { ERROR_CODE_METADATA } from '../common/contract/error-metadata.js';
import type { ErrorCode } from '../common/errors.js';
import { RejectedMessage } from './guarded-service.js';

type Listener = Parameters<grpc.ServerInterceptingCallInterface['start']>[0];
type Status = Parameters<grpc.ServerInterceptingCallInterface['sendStatus']>[0];

/** grpc-js' receive-limit refusals (its stream decoder, and its decompression on the server call). */
const LIMIT_TEXT = /^Received message (?:larger than max \((\d+) vs \d+\)|that decompresses to a size larger than (\d+))$/;
/** grpc-js' refusals of a compressed message (server-interceptors.js decompressMessage, pinned grpc-js 1.14). */
const UNREADABLE_TEXT = /^(?:Failed to decompress message|Received message compressed with unsupported encoding |Error deserializing request)/;

/** The codes a server gives what grpc-js would not read: a message over its limit, and any other. */
export interface ReadRefusalCodes<C extends ErrorCode> {
  readonly tooLarge: C;
  readonly malformed: C;
}

/** What `status` refuses when it is grpc-js' own refusal of a request it could not read, else undefined. */
export function readRefusal<C extends ErrorCode>(status: Status, codes: ReadRefusalCodes<C>): RejectedMessage<C> | undefined {
  if ((status.metadata?.get(ERROR_CODE_METADATA).length ?? 0) > 0) return undefined;
  const details = status.details ?? '';
  if (status.code === grpc.status.RESOURCE_EXHAUSTED) {
    const m = LIMIT_TEXT.exec(details);
    // Decompression stops at the limit: the message is at least one byte over it.
    if (m) return new RejectedMessage(codes.tooLarge, m[1] !== undefined ? Number(m[1]) : Number(m[2]) + 1);
  }
  if ((status.code === grpc.status.INTERNAL || status.code === grpc.status.UNIMPLEMENTED) && UNREADABLE_TEXT.test(details)) {
    return new RejectedMessage(codes.malformed, undefined);
  }
  return undefined;
}

export class ReadRefusalCall<C extends ErrorCode> extends grpc.ServerInterceptingCall {
  readonly #requestStream: boolean;
  readonly #codes: ReadRefusalCodes<C>;
  /** The answer to a refusal that comes before the call has a handler to give it to. */
  readonly #answer: (code: C) => Status;
  #handler: Listener | undefined;
  /**
   * A single-request call's message, held until the half-close: grpc-js would run the handler with the first of
   * two messages and answer the second itself (UNIMPLEMENTED); held, the second turns the call into a refusal.
   */
  #held: unknown;
  #holding = false;
  /** The call is refused; the handler answers, and whatever the stream still carries goes nowhere. */
  #refused = false;
  /** The client or the session guard reset the stream: nothing is answered or refused any more. */
  #cancelled = false;
  readonly #send: (status: Status) => void;

  constructor(method: grpc.ServerMethodDefinition<unknown, unknown>, next: grpc.ServerInterceptingCallInterface, codes: ReadRefusalCodes<C>, answer: (code: C) => Status) {
    super(next);
    this.#requestStream = method.requestStream;
    this.#codes = codes;
    this.#answer = answer;
    this.#send = next.sendStatus.bind(next);
    // grpc-js sends its refusal through this.sendStatus of the call object below every interceptor, never through a
    // responder: only an own property on that object sees it. Every other status (the handler's) passes unchanged.
    next.sendStatus = (status: Status) => {
      const refusal = readRefusal(status, this.#codes);
      if (refusal === undefined) this.#send(status);
      // Each later frame of a refused message is refused again by grpc-js: answered once, by the handler.
      else if (!this.#refused) this.#refuse(refusal);
    };
  }

  override start(listener: Listener): void {
    this.#handler = listener;
    super.start({
      onReceiveMetadata: (metadata) => listener.onReceiveMetadata(metadata),
      onReceiveMessage: (message) => {
        if (this.#refused) return;
        if (this.#requestStream) {
          listener.onReceiveMessage(message);
          return;
        }
        if (this.#holding) {
          this.#refuse(new RejectedMessage(this.#codes.malformed, undefined));
          return;
        }
        this.#held = message;
        this.#holding = true;
        // The handler asks for the next read once it has a message; it has none yet: read on to the half-close.
        this.startRead();
      },
      onReceiveHalfClose: () => {
        if (this.#refused) return;
        if (!this.#requestStream) {
          if (!this.#holding) {
            // A stream reset under the call (the session guard's message deadline) ends its reading too, and
            // grpc-js reports that as a half-close: then the cancel follows in the same turn, and it is no request
            // to refuse (audit 61b F3: counted and audited again as malformed, caller unknown).
            setImmediate(() => {
              if (!this.#cancelled && !this.#refused) this.#refuse(new RejectedMessage(this.#codes.malformed, undefined));
            });
            return;
          }
          listener.onReceiveMessage(this.#held);
        }
        listener.onReceiveHalfClose();
      },
      onCancel: () => {
        this.#cancelled = true;
        listener.onCancel();
      },
    });
  }

  /** The handler gets the refusal as its request, as guardedService hands it one it will not decode. */
  #refuse(refusal: RejectedMessage<C>): void {
    this.#refused = true;
    const handler = this.#handler;
    if (handler === undefined) {
      this.#send(this.#answer(refusal.code));
      return;
    }
    handler.onReceiveMessage(refusal);
    // A single-request call runs its handler at the half-close, which the refused call will never reach.
    if (!this.#requestStream) handler.onReceiveHalfClose();
  }
}
