// A request message over grpc-js' own receive limit (grpc.max_receive_message_length), or one that decompresses past
// it, is refused by grpc-js itself: RESOURCE_EXHAUSTED with its own text, no tessera-error-code, and the handler never
// runs, so nothing audits or counts it. ReceiveLimitCall catches that refusal and hands the handler a RejectedMessage
// instead, exactly as guardedService does for a message between maxRequestBytes and that limit: every oversized
// request, on every method, gets the handler's coded answer, audit line and count. Nothing more is read or buffered:
// grpc-js has already stopped reading the message when it refuses it.
import * as grpc from '@grpc/grpc-js';
import { ERROR_CODE_METADATA } from '../../../common/contract/error-metadata.js';
import { TesseraError } from '../../../common/errors.js';
import { RejectedMessage } from './guarded-service.js';
import { toGrpcError } from './grpc-status.js';

type Listener = Parameters<grpc.ServerInterceptingCallInterface['start']>[0];
type Status = Parameters<grpc.ServerInterceptingCallInterface['sendStatus']>[0];

/** grpc-js' receive-limit refusals (its stream decoder, and its decompression on the server call). */
const LIMIT_TEXT = /^Received message (?:larger than max \((\d+) vs \d+\)|that decompresses to a size larger than (\d+))$/;

/** The refused message's size when `status` is grpc-js' own receive-limit refusal, else undefined. */
export function receiveLimitRefusal(status: Status): number | undefined {
  if (status.code !== grpc.status.RESOURCE_EXHAUSTED || (status.metadata?.get(ERROR_CODE_METADATA).length ?? 0) > 0) return undefined;
  const m = LIMIT_TEXT.exec(status.details ?? '');
  if (!m) return undefined;
  // Decompression stops at the limit: the message is at least one byte over it.
  return m[1] !== undefined ? Number(m[1]) : Number(m[2]) + 1;
}

export class ReceiveLimitCall extends grpc.ServerInterceptingCall {
  readonly #requestStream: boolean;
  #handler: Listener | undefined;
  /** The handler has had a message from the client. */
  #delivered = false;
  /** grpc-js refused a message; the handler answers, and whatever the stream still carries goes nowhere. */
  #refused = false;
  readonly #send: (status: Status) => void;

  constructor(method: grpc.ServerMethodDefinition<unknown, unknown>, next: grpc.ServerInterceptingCallInterface) {
    super(next);
    this.#requestStream = method.requestStream;
    this.#send = next.sendStatus.bind(next);
    // grpc-js sends its refusal through this.sendStatus of the call object below every interceptor, never through a
    // responder: only an own property on that object sees it. Every other status (the handler's) passes unchanged.
    next.sendStatus = (status: Status) => {
      const size = receiveLimitRefusal(status);
      if (size === undefined) return this.#send(status);
      // Each later frame of a refused message is refused again by grpc-js: answered once.
      if (this.#refused) return;
      this.#refused = true;
      this.#hand(size);
    };
  }

  override start(listener: Listener): void {
    this.#handler = listener;
    super.start({
      onReceiveMetadata: (metadata) => listener.onReceiveMetadata(metadata),
      onReceiveMessage: (message) => {
        if (this.#refused) return;
        this.#delivered = true;
        listener.onReceiveMessage(message);
      },
      onReceiveHalfClose: () => {
        if (!this.#refused) listener.onReceiveHalfClose();
      },
      onCancel: () => listener.onCancel(),
    });
  }

  /** The handler gets the refusal as its request, as guardedService hands it one under grpc-js' limit. */
  #hand(size: number): void {
    const handler = this.#handler;
    // A unary request that already has its one message (a protocol violation) would run with that message: answer here.
    if (handler === undefined || (!this.#requestStream && this.#delivered)) {
      this.#send(toGrpcError(new TesseraError('TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE')));
      return;
    }
    handler.onReceiveMessage(new RejectedMessage('TESSERA_ERR_ISSUANCE_MESSAGE_TOO_LARGE', size));
    // A single-request call runs its handler at the half-close, which the refused message will never reach.
    if (!this.#requestStream) handler.onReceiveHalfClose();
  }
}
