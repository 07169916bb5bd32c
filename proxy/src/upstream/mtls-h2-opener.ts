// Opens the transport of an HTTP/2 session to a peer proxy: an mTLS connection with secure naming (connectors.ts)
// that must have negotiated h2 by ALPN; anything else is refused before a session is built on it.
import type { SocketOpener } from '../h2/h2-upstream.js';
import { type MtlsDeps, type MtlsTarget, mtlsConnect, type SessionMemory } from './connectors.js';

export function mtlsH2Opener(target: MtlsTarget, deps: MtlsDeps): SocketOpener {
  const ticket: SessionMemory = {};
  return (done) =>
    mtlsConnect({ ...target, alpn: ['h2'] }, deps, ticket, (err, socket) => {
      if (err || !socket) return done(err ?? new Error('connect failed'));
      if (socket.alpnProtocol !== 'h2') {
        socket.destroy();
        return done(new Error(`upstream ${target.host}:${target.port} did not negotiate h2`));
      }
      done(null, socket);
    });
}
