// The wire format of Tessera's multiplexed proxy-to-proxy transport (ALPN `tessera-mux/1`, docs/transport.md):
// every frame is a 12-byte header, then for DATA its payload. HTTP/1.1 heads and bodies travel unchanged inside
// the DATA of a stream, so each stream is what one pooled keep-alive connection was, and one TLS connection
// carries them all. Modelled on yamux (one header shape for every frame type) with HTTP/2's rules for stream ids,
// per-stream flow control and GOAWAY. Pure: encoding and decoding only.

export const MUX_ALPN = 'tessera-mux/1';
export const HEADER_BYTES = 12;

export enum FrameType {
  Data = 0,
  /** length = bytes of credit added to the stream's send window. */
  WindowUpdate = 1,
  /** stream 0; length = opaque value echoed with the ACK flag. */
  Ping = 2,
  /** stream = the last stream id the sender will serve; code = why. The sender opens no stream after it. */
  GoAway = 3,
  /** stream 0; length = the most streams the sender serves at once. The server's first frame; the dialer opens no
   * stream before it. */
  Settings = 4,
}

export const Flag = {
  /** The first frame of a stream (only the dialing side opens streams). */
  Syn: 0x1,
  /** A PING answer. */
  Ack: 0x2,
  /** The sender finished writing the stream (half-close). */
  Fin: 0x4,
  /** The stream is abandoned both ways; code says why. */
  Rst: 0x8,
} as const;

/** Codes carried by RST and GOAWAY: why a stream or session ended. */
export enum MuxCode {
  None = 0,
  Protocol = 1,
  FlowControl = 2,
  Refused = 3,
  Cancel = 4,
  Flood = 5,
  FrameSize = 6,
  Keepalive = 7,
  Internal = 8,
}

/** Largest DATA payload a peer may send in one frame; writers split at this size. */
export const MAX_DATA_PAYLOAD = 64 * 1024;
/** Each stream's receive window when it opens (as HTTP/2's default): what a paused stream may hold, at most. */
export const STREAM_WINDOW = 64 * 1024;
/** The largest send window a WINDOW_UPDATE may build (as HTTP/2). */
export const MAX_WINDOW = 2 ** 31 - 1;

export interface FrameHeader {
  readonly type: number;
  readonly flags: number;
  readonly code: number;
  readonly stream: number;
  readonly length: number;
}

/** Writes a header at `at` in `into` (the caller sized it). */
export function writeHeader(into: Buffer, at: number, type: FrameType, flags: number, code: number, stream: number, length: number): void {
  into[at] = type;
  into[at + 1] = flags;
  into.writeUInt16BE(code, at + 2);
  into.writeUInt32BE(stream >>> 0, at + 4);
  into.writeUInt32BE(length >>> 0, at + 8);
}

export function header(type: FrameType, flags: number, code: number, stream: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(HEADER_BYTES);
  writeHeader(b, 0, type, flags, code, stream, length);
  return b;
}

export function readHeader(b: Buffer, at: number): FrameHeader {
  return { type: b[at]!, flags: b[at + 1]!, code: b.readUInt16BE(at + 2), stream: b.readUInt32BE(at + 4), length: b.readUInt32BE(at + 8) };
}

/** Whether a frame of this header carries `length` bytes of payload after it (DATA only). */
export function payloadBytes(h: FrameHeader): number {
  return h.type === FrameType.Data ? h.length : 0;
}
