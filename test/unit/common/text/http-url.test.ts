// The one rule for the URLs Tessera reads (config keys of format url, tessera.dev/tracing-endpoint, OTEL_* endpoint
// variables): an http(s) URL usable as written. What the WHATWG parser would repair into another URL is refused
// (audit 38b, F8: newlines, tabs, spaces and port 0 were taken), what it reads as written is not.
import { describe, expect, test } from 'vitest';
import { httpUrlProblem } from '../../../../common/text/http-url.js';

describe('httpUrlProblem', () => {
  test.each([
    'http://otel-collector.observability:4318/v1/traces',
    'https://collector.example/v1/traces',
    'HTTP://X:4318/v1/traces',
    'http://[::1]:4318/v1/traces',
    'http://10.0.0.7:4318/v1/traces?tenant=a#f',
    'http://éx.com:4318/v1/traces',
    'https://user:pw@collector/v1/traces',
    'http://x:65535/',
    'http://x/v1/%20traces',
    'http://127.0.0.1:4318/v1/traces',
    'http://[::ffff:7f00:1]:4318/v1/traces',
  ])('%j is usable as written', (url) => {
    expect(httpUrlProblem(url)).toBeNull();
  });

  test.each([
    // The audit's values, as fam1_cfg.py sent them.
    ['http://x:4318/v1/traces\nadmin:\n  listen: 0.0.0.0:1', 'holds U+000A (a control, invisible or space character) at offset 23'],
    ['http://x:4318/v1/\ttraces', 'holds U+0009'],
    ['http://x:4318/v1/ traces', 'holds U+0020'],
    ['http://x:0/v1/traces', 'has port 0'],
    // Their variants: other controls, trimmed or invisible characters, what parsers read as something else.
    [' http://x:4318/v1/traces', 'holds U+0020 (a control, invisible or space character) at offset 0'],
    ['http://x:4318/v1/traces\r', 'holds U+000D'],
    ['http://x:4318/v1/traces\u0000', 'holds U+0000'],
    ['http://x:4318/v1/tr\u0085aces', 'holds U+0085'],
    ['http://x\u200b.example:4318/v1/traces', 'holds U+200B'],
    ['http://x:4318/v1/traces\u00a0', 'holds U+00A0'],
    ['http://x:4318/v1/\u2028traces', 'holds U+2028'],
    ['http://x:4318/v1/\u202etraces', 'holds U+202E'],
    ['http://x:4318\\v1\\traces', 'holds "\\", which a URL parser reads as "/"'],
    ['http:x:4318/v1/traces', 'does not start with http:// or https://'],
    ['http:/x:4318/v1/traces', 'does not start with http:// or https://'],
    ['http://x:00/v1/traces', 'has port 0'],
    ['http://x:99999/v1/traces', 'is not a URL'],
    ['http://x:-1/v1/traces', 'is not a URL'],
    ['http://:4318/v1/traces', 'is not a URL'],
    ['otel-collector:4318', 'is not an http(s) URL'],
    ['grpc://otel:4317', 'is not an http(s) URL'],
    ['file:///tmp/traces', 'is not an http(s) URL'],
    ['', 'is not a URL'],
    // Hosts the parser rewrites into another (audit 40b, F5): IPv4 in hex, octal, short or integer form; %-encoding.
    ['http://0x7f.1:4318/v1/traces', 'writes the address 127.0.0.1 as "0x7f.1"'],
    ['http://0177.0.0.1:4318/v1/traces', 'writes the address 127.0.0.1 as "0177.0.0.1"'],
    ['http://127.1:4318/v1/traces', 'writes the address 127.0.0.1 as "127.1"'],
    ['http://2130706433/v1/traces', 'writes the address 127.0.0.1 as "2130706433"'],
    ['http://10.0.0.07:4318/v1/traces', 'writes the address 10.0.0.7 as "10.0.0.07"'],
    ['http://u@0x0a.0.0.7/v1/traces', 'writes the address 10.0.0.7 as "0x0a.0.0.7"'],
    ['http://%68:4318/v1/traces', 'has a percent-encoded host ("%68"), which a URL parser decodes into "h"'],
    ['http://collector%2eexample/v1/traces', 'has a percent-encoded host'],
  ])('%j is refused: %s', (url, problem) => {
    expect(httpUrlProblem(url)).toContain(problem);
  });
});
