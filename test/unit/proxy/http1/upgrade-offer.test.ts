// Which upgrade offers go on to the app (audit 57a F3): an allow-list (`websocket` unless `upgrades:` names others),
// compared without case; every other protocol, HTTP itself above all (h2c, HTTP/2.0, the h2c drafts, TLS/1.x as RFC
// 2817 uses it, SPDY), and every value that is not a list of protocol-name ["/" protocol-version] tokens, is dropped
// (null: a plain request). Also the config key: entries must be protocols, and HTTP itself or TLS is refused.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { parseProxyConfig } from '../../../../proxy/src/config/proxy-config.js';
import { type HttpHead, parseHead } from '../../../../proxy/src/http1/http1-head.js';
import { DEFAULT_UPGRADES, switchOffered, upgradeConfigProblem, upgradeProtocols, upgradeRequested } from '../../../../proxy/src/http1/upgrade-offer.js';
import { fuzzParams } from '../../../helpers/fuzz-params.js';

const DEFAULT: ReadonlySet<string> = new Set(DEFAULT_UPGRADES);
/** What an operator who names more protocols gets (lower-cased by the config loader). */
const OPERATOR: ReadonlySet<string> = new Set(['websocket', 'spdy/3.1', 'tcp']);

function head(text: string): HttpHead {
  const r = parseHead(Buffer.from(text, 'latin1'), 0, 'request', { maxHeaderBytes: 4096, maxHeaders: 32 });
  if (!('head' in r)) throw new Error(`expected a head, got ${JSON.stringify(r)}`);
  return r.head;
}
const offer = (upgrade: string, connection = 'Upgrade') => head(`GET /x HTTP/1.1\r\nHost: a\r\nConnection: ${connection}\r\nUpgrade: ${upgrade}\r\n\r\n`);

describe('upgradeRequested with the default list (websocket)', () => {
  test.each([
    ['websocket', 'websocket'],
    ['WebSocket', 'WebSocket'],
    ['WEBSOCKET', 'WEBSOCKET'],
    // Empty list elements are ignored (RFC 9110 section 5.6.1.2); what goes on is the list without them.
    ['websocket,', 'websocket'],
    [', websocket ,', 'websocket'],
    ['websocket, WebSocket', 'websocket, WebSocket'],
  ])('%s switches, forwarded as %s', (value, forwarded) => {
    expect(upgradeRequested(offer(value), DEFAULT)).toBe(forwarded);
  });

  test.each([
    // HTTP itself, every spelling the audit tried, and its relatives that carry HTTP requests after the switch.
    'h2c', 'H2C', 'h2', 'HTTP/2.0', 'http/2.0', 'HTTP/2', 'HTTP/1.1', 'HTTP/3', 'https', 'h2c-14', 'h2c-17', 'h2-16', 'SPDY/3.1', 'spdy/2', 'TLS/1.2', 'TLS/1.0', 'tls',
    // Not on the list: anything else an app might accept.
    'tcp', 'raw', 'h2o-chat', 'websocket/13', 'websockets', 'x-websocket', 'IRC/6.9',
    // A list with one protocol that is not allowed is dropped whole, not trimmed.
    'websocket, h2c', 'h2c, websocket', 'websocket, TLS/1.2', 'foo, HTTP/2.0, bar', 'HTTP/2.0\t,websocket',
    // Not a protocol list (RFC 9110 section 7.8): quoted strings, parameters, spaces inside, empty names or versions, bytes outside ASCII.
    '"h2c"', '"websocket"', 'h2c;q=1', 'websocket;q=1', 'websocket; x', 'web socket', 'websocket/', '/13', 'websocket/13/1', 'websocket/"13"', 'h2c\\', 'websock\xe9t', '(websocket)', 'websocket=1', ',', ' , ,',
  ])('%s is not an upgrade: dropped', (value) => {
    expect(upgradeRequested(offer(value), DEFAULT)).toBeNull();
  });

  test.each([
    ['Upgrade not named in Connection', 'GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n'],
    ['Connection: upgrade without Upgrade', 'GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n'],
    ['an empty Upgrade', 'GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade:\r\n\r\n'],
    ['two Upgrade lines', 'GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\nUpgrade: websocket\r\n\r\n'],
    ['two Upgrade lines, the second h2c', 'GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\nUpgrade: h2c\r\n\r\n'],
    ['HTTP/1.0 (no upgrades in 1.0)', 'GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n'],
  ])('%s: not an upgrade', (_name, text) => {
    expect(upgradeRequested(head(text), DEFAULT)).toBeNull();
  });

  test('upgrade among other Connection tokens, in any case', () => {
    expect(upgradeRequested(offer('websocket', 'keep-alive, UPGRADE'), DEFAULT)).toBe('websocket');
    expect(upgradeRequested(offer('websocket', 'Upgrade, HTTP2-Settings'), DEFAULT)).toBe('websocket');
  });
});

describe('upgradeRequested with an operator list (websocket, SPDY/3.1, tcp)', () => {
  test.each([
    ['SPDY/3.1', 'SPDY/3.1'],
    ['spdy/3.1', 'spdy/3.1'],
    ['tcp', 'tcp'],
    ['TCP, websocket', 'TCP, websocket'],
  ])('%s switches', (value, forwarded) => {
    expect(upgradeRequested(offer(value), OPERATOR)).toBe(forwarded);
  });

  test.each(['SPDY/3', 'SPDY', 'spdy/3.1;x', 'tcp, raw', 'h2c', 'TLS/1.2'])('%s is dropped', (value) => {
    expect(upgradeRequested(offer(value), OPERATOR)).toBeNull();
  });

  test('HTTP itself is dropped even from a list that names it (the config refuses it; a hand-made list is no way round)', () => {
    const careless: ReadonlySet<string> = new Set(['h2c', 'http/2.0', 'tls/1.2', 'h2c-14']);
    for (const v of ['h2c', 'HTTP/2.0', 'TLS/1.2', 'h2c-14']) expect(upgradeRequested(offer(v), careless), v).toBeNull();
  });

  test('an empty list lets nothing switch', () => {
    expect(upgradeRequested(offer('websocket'), new Set())).toBeNull();
  });
});

describe('upgradeProtocols', () => {
  test.each([
    ['websocket', ['websocket']],
    ['a/1, b , c/x.y', ['a/1', 'b', 'c/x.y']],
    ["!#$%&'*+-.^_`|~09AZaz/!#$%&'*+-.^_`|~09AZaz", ["!#$%&'*+-.^_`|~09AZaz/!#$%&'*+-.^_`|~09AZaz"]],
    [',,', []],
    ['a,"b"', null],
    ['a b', null],
    ['a/b/c', null],
    ['a;b', null],
  ])('%s → %j', (value, expected) => {
    expect(upgradeProtocols(value)).toEqual(expected);
  });

  test('generated values: an offer goes on only when every protocol in it is allowed, and goes on as a valid list of them', () => {
    const piece = fc.constantFrom('websocket', 'WebSocket', 'h2c', 'HTTP/2.0', 'TLS/1.2', 'SPDY/3.1', 'tcp', '"h2c"', ';q=1', '/', ' ', '\t', ',', '', 'x', '13');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 8 }), (parts) => {
        const value = parts.join('');
        let h: HttpHead;
        try {
          h = offer(value);
        } catch {
          return; // not a head the parser takes (e.g. trailing whitespace only): nothing to decide
        }
        const out = upgradeRequested(h, OPERATOR);
        if (out === null) return;
        const again = upgradeProtocols(out);
        expect(again).not.toBeNull();
        expect(again!.length).toBeGreaterThan(0);
        for (const p of again!) expect(OPERATOR.has(p.toLowerCase()), p).toBe(true);
        expect(upgradeProtocols(value)).toEqual(again);
      }),
      fuzzParams(5702, 500),
    );
  });
});

describe('upgrades: in the proxy config', () => {
  const config = (line: string) =>
    ['identity:', '  files: { certFile: s.pem, keyFile: k.pem, bundleFile: b.pem }', 'inbound:', '  - { name: app, listen: 127.0.0.1:15006, forwardTo: 127.0.0.1:8080 }', line, ''].join('\n');
  const load = (line: string) => parseProxyConfig(config(line), '/etc/tessera/proxy.yaml');

  test('absent: websocket only; written: the names lower-cased, once each', () => {
    expect(load('').upgrades).toEqual(['websocket']);
    expect(load('upgrades: [WebSocket, SPDY/3.1, tcp, TCP]').upgrades).toEqual(['websocket', 'spdy/3.1', 'tcp']);
    expect(load('upgrades: []').upgrades).toEqual([]);
  });

  test.each(['h2c', 'H2C', 'h2', 'HTTP/2.0', 'http', 'https', 'h2c-14', 'h2-17', 'HTTP/3', 'h3', 'TLS/1.2', 'tls', '"h2c"', 'h2c;q=1', 'web socket', 'websocket/', ''])('%j is refused, naming the key', (entry) => {
    try {
      load(`upgrades: [websocket, ${JSON.stringify(entry)}]`);
      expect.unreachable('parsed');
    } catch (e) {
      expect(isTesseraError(e, 'TESSERA_ERR_CONFIG_INVALID')).toBe(true);
      expect((e as Error).message).toMatch(/upgrades\[1\]/);
    }
  });

  test('the reason names what is wrong', () => {
    expect(upgradeConfigProblem('h2c')).toMatch(/HTTP itself/);
    expect(upgradeConfigProblem('TLS/1.2')).toMatch(/TLS/);
    expect(upgradeConfigProblem('h2c;q=1')).toMatch(/token/);
    expect(upgradeConfigProblem('SPDY/3.1')).toBeNull();
    expect(upgradeConfigProblem('h2o-chat')).toBeNull();
    // HTTP under other spellings (audit 57e F3).
    for (const p of ['http2', 'HTTP2', 'h2c_14', 'h2c-draft', 'h2.0', 'PRI', 'quic', 'QUIC/1', 'h3-29', 'tls13', 'https/1.1']) expect(upgradeConfigProblem(p), p).toMatch(/HTTP itself/);
  });

  test("an app's 101 switches only to what was offered (audit 57e F2)", () => {
    const res = (upgrade: string[]) => parseHead(Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n${upgrade.map((u) => `Upgrade: ${u}\r\n`).join('')}\r\n`), 0, 'response', { maxHeaderBytes: 8192, maxHeaders: 100 }) as { head: HttpHead };
    expect(switchOffered(res(['websocket']).head, 'websocket')).toBe(true);
    expect(switchOffered(res(['WebSocket']).head, 'websocket')).toBe(true);
    expect(switchOffered(res(['SPDY/3.1']).head, 'websocket, SPDY/3.1')).toBe(true);
    for (const u of [['h2c'], ['websocket, h2c'], ['SPDY/3.1'], ['"websocket"'], [''], ['websocket', 'websocket']]) expect(switchOffered(res(u).head, 'websocket'), u.join('|')).toBe(false);
    expect(switchOffered(res([]).head, 'websocket')).toBe(false); // a 101 must say what it switches to
  });
});
