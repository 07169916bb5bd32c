// What the HTTP/1.1 forwarder and the keep-alive pool use of a connection, on either side: a TCP or TLS socket, or
// a stream of a multiplexed session (proxy/src/mux/mux-stream.ts), which stands wherever a socket stood.

export interface ByteSocket {
  write(chunk: Buffer): boolean;
  end(): unknown;
  destroy(): unknown;
  pause(): unknown;
  resume(): unknown;
  isPaused(): boolean;
  allowHalfOpen: boolean;
  readonly readableEnded: boolean;
  readonly writableEnded: boolean;
  readonly destroyed: boolean;
  /** Bytes written and not yet handed to the kernel (or the session). */
  readonly writableLength?: number;
  /** Its writer was told to wait for 'drain' (a multiplexed stream's session backed up counts). */
  readonly writableNeedDrain?: boolean;
  readonly remoteAddress?: string | undefined;
  /** TCP sockets only. */
  setNoDelay?(noDelay?: boolean): unknown;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'drain' | 'end' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  once(event: 'close', listener: () => void): unknown;
  once(event: 'error', listener: (error: Error) => void): unknown;
}
