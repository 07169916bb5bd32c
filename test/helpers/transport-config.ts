// A minimal proxy config with a `transport:` line (line 4 of /test/proxy.yaml), and the coded error a bad one gives.
import { TesseraError } from '../../common/errors.js';
import { parseProxyConfig, type ProxyConfig } from '../../proxy/src/config/proxy-config.js';

export function transportConfig(transport: string): ProxyConfig {
  return parseProxyConfig(
    `identity: { files: { certFile: c.pem, keyFile: k.pem, bundleFile: b.pem } }
inbound:
  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:9 }
${transport}`,
    '/test/proxy.yaml',
  );
}

/** The TesseraError `transportConfig(transport)` throws; fails the test when it throws none. */
export function transportConfigError(transport: string): TesseraError {
  try {
    transportConfig(transport);
  } catch (e) {
    if (e instanceof TesseraError) return e;
    throw e;
  }
  throw new Error(`no error for: ${transport}`);
}
