// Opens the transport of an HTTP/2 session to a peer proxy: an mTLS connection with secure naming (connectors.ts)
// that must have negotiated h2 by ALPN; anything else is refused before a session is built on it. Its session
// ticket is kept, and judged on resumption, by mtlsConnect like every other upstream connection's.
import type { SocketOpener } from '../h2/h2-upstream.js';
import { type MtlsDeps, type MtlsTarget, mtlsConnect, type SessionMemory } from './connectors.js';

export function mtlsH2Opener(target: MtlsTarget, deps: MtlsDeps): SocketOpener {
  const ticket: SessionMemory = {};
  return (done) =>
    mtlsConnect({ ...target, alpn: ['h2'] }, deps, ticket, (err, socket, _resumed, peerExpired) => {
      if (err || !socket) return done(err ?? new Error('connect failed'));
      if (socket.alpnProtocol !== 'h2') {
        socket.destroy();
        return done(new Error(`upstream ${target.host}:${target.port} did not negotiate h2`));
      }
      // The session stops taking streams once the upstream's leaf expires, resumed connections included.
      done(null, socket, peerExpired);
    });
}
