// The fixed bounds of a multiplexed session (mux-session.ts): the stream ids it may use, and how much it queues for
// a peer before its writers wait and before a peer that reads nothing ends it.

/** Stream ids are 31-bit, as HTTP/2's: the dialer stops opening below this, and a peer's SYN above it is a fault. */
export const MAX_STREAM_ID = 0x7fff_ffff;
/** Bytes queued for the socket beyond which writers are told to wait. */
export const HIGH_WATER = 1 << 20;
/**
 * What a peer that reads nothing may make the session hold before it ends (write_backlog): the socket's backlog and
 * every stream's queue together. A stream's writer waits once anything is queued on it, so a session whose writers
 * wait holds about one read (64 KiB) per stream: 6.4 MiB at the default 100 streams.
 */
export const MAX_BACKLOG = 16 * HIGH_WATER;
