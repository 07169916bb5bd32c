// Tessera's bound on the frames an HTTP/2 client sends that ask for no answer and carry no request: WINDOW_UPDATE
// above all (audit 27a F3: connection-level WINDOW_UPDATE +1 frames for 8 s cost the edge 15 % of a core and the
// connection stayed), on the connection or on a stream, and any other frame that answers nothing (empty DATA, ...).
// nghttp2 bounds the frames it must answer (SETTINGS and PING, through its outbound queue's flood check), and
// node:http2 reports none of the others: no event, no counter. So the bound is
// in bytes. What the client sent (its socket's bytesRead) less what its requests account for is its control
// traffic: per stream what its header fields took on the wire at least (h2-header-credit.ts: before, their decoded
// size, which HPACK references multiply; audit 53a F3) and STREAM_ALLOWANCE for its other frames (RST_STREAM,
// PRIORITY, WINDOW_UPDATE, trailers' framing, header fields repeated as literals); per DATA chunk its bytes and
// CHUNK_ALLOWANCE (a frame header, a TLS record around it). It may reach BASE_BYTES plus PER_BYTE_WRITTEN times
// what the server wrote on the connection: a client's WINDOW_UPDATEs, PINGs and SETTINGS answer the DATA, PINGs and
// SETTINGS it gets. Envoy's max_inbound_window_update_frames_per_data_frame_sent is the same idea counted in frames
// (5 + 10 per DATA frame sent); a WINDOW_UPDATE is 13 bytes, and a DATA frame at least 10, mostly 16 KiB. A client
// past it is cut (GOAWAY ENHANCE_YOUR_CALM, counted as http2_flood) by whoever watches the session: the proxies'
// listeners (proxy/src/listeners/h2-server-limits.ts) and the grpc-js servers, the control plane's gRPC port and the
// Workload API socket (grpc-session-guard.ts; audit 53a F2), within a second. Padding in DATA frames is not seen
// either and counts as control traffic.
import { type ServerHttp2Session, type ServerHttp2Stream, sensitiveHeaders } from 'node:http2';
import { HeaderCredit } from './h2-header-credit.js';

/** Control traffic any connection may send, whatever it was answered: about 5,000 WINDOW_UPDATE frames. */
export const BASE_BYTES = 64 * 1024;
/** Control traffic per byte the server wrote on the connection. */
export const PER_BYTE_WRITTEN = 4;
/** Per request stream, for its frames other than HEADERS and DATA. */
export const STREAM_ALLOWANCE = 1024;
/** Per DATA chunk of a request body, for its frame header and the TLS record around it. */
export const CHUNK_ALLOWANCE = 64;

export class FrameBudget {
  readonly #session: ServerHttp2Session;
  /** Bytes the client's requests account for. */
  #explained = 0;
  readonly #headers = new HeaderCredit();

  constructor(session: ServerHttp2Session) {
    this.#session = session;
  }

  /**
   * A request stream with its header fields as received (name, value, ...) and the names its client sent
   * never-indexed (`headers[http2.sensitiveHeaders]`).
   */
  stream(stream: ServerHttp2Stream, rawHeaders: readonly string[] | undefined, sensitive: readonly string[] | undefined): void {
    this.#explained += STREAM_ALLOWANCE + this.#headers.block(rawHeaders, sensitive);
    // Body bytes are counted as node:http2 hands them to the stream: a 'data' listener would start the stream
    // flowing before its forwarder's pipe exists.
    const push = stream.push;
    stream.push = (chunk: unknown, encoding?: BufferEncoding) => {
      if (chunk instanceof Uint8Array) this.#explained += chunk.length + CHUNK_ALLOWANCE;
      return push.call(stream, chunk, encoding);
    };
    stream.once('trailers', (trailers: Record<string | symbol, unknown>, _f, raw: readonly string[] | undefined) => {
      this.#explained += this.#headers.block(raw, trailers[sensitiveHeaders] as readonly string[] | undefined);
    });
  }

  /**
   * A stream the server reset: the DATA its client may still send before it learns (the stream's receive window,
   * dropped by nghttp2 unseen) is a request's, not control traffic.
   */
  reset(stream: ServerHttp2Stream): void {
    const window = stream.state.localWindowSize ?? 0;
    this.#explained += window + Math.ceil(window / 16_384 + 1) * CHUNK_ALLOWANCE;
  }

  /** True once the client's control traffic is past its bound. Read only while the session is open. */
  get exceeded(): boolean {
    const socket = this.#session.socket;
    const control = (socket?.bytesRead ?? 0) - this.#explained;
    return control > BASE_BYTES + PER_BYTE_WRITTEN * (socket?.bytesWritten ?? 0);
  }
}
