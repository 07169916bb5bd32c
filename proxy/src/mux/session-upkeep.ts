// A served multiplexed session as the listener's connection set sees it (an Expirable): the deadline sweep runs its
// keepalive, flood-budget renewal and idle close; shutdown drains it with GOAWAY.
import type { Expirable } from '../listeners/session-set.js';
import type { MuxSession } from './mux-session.js';

export function sessionUpkeep(session: MuxSession, idleMs: number, firstCheckMs: number): Expirable {
  let next = firstCheckMs;
  return {
    get deadlineMs() {
      return next;
    },
    get closed() {
      return session.ended;
    },
    expire() {
      next = session.tick(idleMs);
    },
    drain() {
      session.drain();
    },
  };
}
