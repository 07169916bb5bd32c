// What a multiplexed session is told at its start (mux-session.ts), and why one ended.
import type { MuxStream } from './mux-stream.js';

export type MuxRole = 'client' | 'server';

/** Why a session ended: a metric label. */
export type MuxEndReason = 'closed' | 'protocol' | 'flow_control' | 'frame_size' | 'flood' | 'keepalive' | 'stream_id' | 'write_backlog';

export interface MuxSessionOptions {
  readonly role: MuxRole;
  readonly nowMs: () => number;
  /** Server: the most streams open at once (announced); more are refused. */
  readonly maxStreams: number;
  /** A PING after this long with no byte read; the session ends when its answer takes longer than keepaliveTimeoutMs. */
  readonly keepaliveIntervalMs: number;
  readonly keepaliveTimeoutMs: number;
  /** Server: a new stream from the peer. */
  readonly onStream?: (stream: MuxStream) => void;
  /** Client: the server's SETTINGS arrived (the session may open streams). */
  readonly onReady?: () => void;
  /** The session ended (socket closed); `reason` when a fault of the peer or a dead peer ended it. */
  readonly onEnd?: (reason: MuxEndReason) => void;
  /** Counted per TLS write and per TLS read (requests per write = requests ÷ writes). */
  readonly onWrite?: () => void;
  readonly onRead?: () => void;
}
