// What /config and log lines show of a URL: never its user:password (up to the last '@' before the path, as URL
// parsers read it) nor its query values (?token=...); anything that is not a URL unchanged.
import { expect, test } from 'vitest';
import { withoutUrlCredentials } from '../../../../common/text/url-credentials.js';

test.each([
  ['http://user:pass@otel:4318/v1/traces', 'http://<redacted>@otel:4318/v1/traces'],
  ['https://u:p@ss@w0rd@host/x', 'https://<redacted>@host/x'],
  ['https://tok@host', 'https://<redacted>@host'],
  ['https://host/v1?token=abc&x=1', 'https://host/v1?token=<redacted>&x=<redacted>'],
  ['https://u:p@host/v1?access_token=abc#frag', 'https://<redacted>@host/v1?access_token=<redacted>#frag'],
  ['HTTPS://U:P@HOST/', 'HTTPS://<redacted>@HOST/'],
  ['https://host/path@not-userinfo', 'https://host/path@not-userinfo'],
  ['https://host/v1', 'https://host/v1'],
  ['/var/lib/tessera', '/var/lib/tessera'],
  ['user:pass@host', 'user:pass@host'],
])('%s -> %s', (input, shown) => {
  expect(withoutUrlCredentials(input)).toBe(shown);
});
