// tunnelStatus: the code a finished TCP tunnel is counted and labelled with (tessera_requests_total{code}, "for TCP
// the connection outcome"). Only the upstream's reset says 502: an idle tunnel or a client's reset worked (audit 30c F2).
import { describe, expect, test } from 'vitest';
import { tunnelStatus } from '../../../../proxy/src/listeners/tcp-relay.js';

describe('tunnelStatus', () => {
  test.each<[string | undefined, number]>([
    [undefined, 200],
    ['idle_timeout', 408],
    ['downstream_reset', 499],
    ['upstream_reset', 502],
  ])('relay error %s → %i', (error, status) => {
    expect(tunnelStatus(error)).toBe(status);
  });
});
