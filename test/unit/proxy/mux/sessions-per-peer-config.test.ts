// `transport.sessionsPerPeer`: the config key (default 1, 1 … 16, an integer), refused otherwise with the key and
// its file:line named, as every malformed key is.
import { describe, expect, test } from 'vitest';
import { transportConfig as config, transportConfigError } from '../../../helpers/transport-config.js';

describe('transport.sessionsPerPeer', () => {
  test('default 1; a value in range is kept', () => {
    expect(config('').transport.sessionsPerPeer).toBe(1);
    expect(config('transport: { sessionsPerPeer: 4 }').transport.sessionsPerPeer).toBe(4);
    expect(config('transport: { sessionsPerPeer: 16 }').transport.sessionsPerPeer).toBe(16);
  });

  test.each([['0'], ['17'], ['2.5'], ['"4"']])('%s is refused, naming the key and its file:line', (v) => {
    const err = transportConfigError(`transport: { sessionsPerPeer: ${v} }`);
    expect(err.code).toBe('TESSERA_ERR_CONFIG_INVALID');
    expect(err.message).toMatch(/transport\.sessionsPerPeer/);
    expect(err.message).toMatch(/^\/test\/proxy\.yaml:4:\d+: /);
  });
});
