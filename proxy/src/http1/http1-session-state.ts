// The states of one downstream HTTP/1.1 connection (Http1Session), apart from the state machine that moves
// between them so the session file stays within its size.

export enum St {
  /** Between requests, or reading the next head. */
  Head = 0,
  /** Reading the request body. */
  Body = 1,
  /** The request is complete; the response is awaited or streaming. */
  Await = 2,
  /** After a 101: bytes both ways (the Http1Tunnel), no more HTTP on this connection. */
  Tunnel = 3,
  Closed = 4,
}
