// What other replicas change, followed: each announced topic reloads the in-memory view it feeds (which publishes
// a new config snapshot when it changed). A failed reload is reported and the view stays as it was; with the
// local feed of a single process, every reload finds what this process already holds.
import type { ChangeFeed, ChangeTopic } from '../store/store-contract.js';

export type Reloads = Partial<Record<ChangeTopic, () => Promise<unknown>>>;

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
