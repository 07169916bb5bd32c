// `transport.sessionsPerPeer`: the config key (default 1, 1 … 16, an integer), refused otherwise with the key and
// its file:line named, as every malformed key is.
import { describe, expect, test } from 'vitest';
import { TesseraError } from '../../../../common/errors.js';
import { parseProxyConfig } from '../../../../proxy/src/config/proxy-config.js';

const config = (transport: string) =>
  parseProxyConfig(
    `identity: { files: { certFile: c.pem, keyFile: k.pem, bundleFile: b.pem } }
inbound:
  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:9 }
${transport}`,
    '/test/proxy.yaml',
  );

describe('transport.sessionsPerPeer', () => {
  test('default 1; a value in range is kept', () => {
    expect(config('').transport.sessionsPerPeer).toBe(1);
    expect(config('transport: { sessionsPerPeer: 4 }').transport.sessionsPerPeer).toBe(4);
    expect(config('transport: { sessionsPerPeer: 16 }').transport.sessionsPerPeer).toBe(16);
  });

  test.each([['0', 'transport: { sessionsPerPeer: 0 }'], ['17', 'transport: { sessionsPerPeer: 17 }'], ['2.5', 'transport: { sessionsPerPeer: 2.5 }'], ['"4"', 'transport: { sessionsPerPeer: "4" }']])(
    '%s is refused, naming the key and its file:line',
    (_v, yaml) => {
      let err: unknown;
      try {
        config(yaml);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TesseraError);
      expect((err as TesseraError).code).toBe('TESSERA_ERR_CONFIG_INVALID');
      expect((err as Error).message).toMatch(/transport\.sessionsPerPeer/);
      expect((err as Error).message).toMatch(/^\/test\/proxy\.yaml:4:\d+: /);
    },
  );
});
