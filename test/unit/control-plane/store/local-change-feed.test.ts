// The in-process change feed: an announcement reaches the topic's subscribers after the announcing code's
// synchronous part (never inside it), once per subscription, not other topics' subscribers; unsubscribing stops
// delivery; a throwing subscriber is reported and does not keep the others from hearing it.
import { describe, expect, test } from 'vitest';
import { LocalChangeFeed } from '../../../../control-plane/src/store/local-change-feed.js';

describe('LocalChangeFeed', () => {
  test('subscribers of the topic hear an announcement after the announcer returns; others do not', async () => {
    const feed = new LocalChangeFeed();
    const heard: string[] = [];
    feed.subscribe('grants', () => heard.push('grants-1'));
    feed.subscribe('grants', () => heard.push('grants-2'));
    feed.subscribe('revocations', () => heard.push('revocations'));
    const done = feed.announce('grants');
    heard.push('announcer returned');
    await done;
    expect(heard).toEqual(['announcer returned', 'grants-1', 'grants-2']);
  });

  test('an unsubscribed function hears nothing more; the same function subscribed twice hears twice', async () => {
    const feed = new LocalChangeFeed();
    let n = 0;
    const fn = () => n++;
    const off = feed.subscribe('registrations', fn);
    feed.subscribe('registrations', fn);
    await feed.announce('registrations');
    expect(n).toBe(2);
    off();
    await feed.announce('registrations');
    expect(n).toBe(3);
  });

  test('a throwing subscriber is reported; the others still hear the announcement', async () => {
    const errors: unknown[] = [];
    const feed = new LocalChangeFeed((e) => errors.push(e));
    let heard = false;
    feed.subscribe('ca', () => {
      throw new Error('boom');
    });
    feed.subscribe('ca', () => {
      heard = true;
    });
    await feed.announce('ca');
    expect(heard).toBe(true);
    expect(errors.map((e) => (e as Error).message)).toEqual(['boom']);
  });
});
