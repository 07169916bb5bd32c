// The change feed between replicas, both ways. What changes here (a CA or JWT key change, a ban, a break-glass
// grant, a registration) is announced without waiting, and a failed announcement is reported, never dropped: the
// other replicas then only catch up on the feed's next poll, and an operator should see why. What other replicas
// change is followed: each announced topic reloads the in-memory view it feeds (which publishes a new config
// snapshot when it changed). A failed reload is reported and the view stays as it was; with the local feed of a
// single process, every reload finds what this process already holds.
import type { ChangeFeed, ChangeTopic } from '../store/store-contract.js';

export type Reloads = Partial<Record<ChangeTopic, () => Promise<unknown>>>;

/** announce(topic) is the `announce: () => void` option a part takes; a failure goes to onError with its topic. */
export function announcer(feed: Pick<ChangeFeed, 'announce'>, onError: (topic: ChangeTopic, e: unknown) => void): (topic: ChangeTopic) => () => void {
  return (topic) => () => {
    feed.announce(topic).catch((e: unknown) => onError(topic, e));
  };
}

/** Subscribes each topic's reload; returns the unsubscribe for all of them. */
export function followChanges(feed: Pick<ChangeFeed, 'subscribe'>, reloads: Reloads, onError: (topic: ChangeTopic, e: unknown) => void): () => void {
  const unsubscribe = Object.entries(reloads).map(([topic, reload]) =>
    feed.subscribe(topic as ChangeTopic, () => {
      reload().catch((e: unknown) => onError(topic as ChangeTopic, e));
    }),
  );
  return () => {
    for (const u of unsubscribe) u();
  };
}
