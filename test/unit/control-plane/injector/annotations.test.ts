// The tessera.dev/* annotation grammars: accepted forms, defaults, and errors that name the annotation.
import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { hasControlCharacters } from '../../../../common/text/control-characters.js';
import { parseInboundPorts, parseOutbound, podOptsOut } from '../../../../control-plane/src/injector/annotations.js';

function errorOf(fn: () => unknown): { code: string; message: string; annotation: unknown } {
  try {
    fn();
  } catch (e) {
    if (!isTesseraError(e)) throw e;
    return { code: e.code, message: e.message, annotation: e.details.annotation };
  }
  throw new Error('expected an error');
}

describe('tessera.dev/inject', () => {
  test.each([
    [undefined, false],
    ['true', false],
    ['enabled', false],
    ['false', true],
    ['disabled', true],
    [' FALSE ', true],
  ])('%s opts out: %s', (value, expected) => {
    expect(podOptsOut(value === undefined ? {} : { 'tessera.dev/inject': value })).toBe(expected);
  });
  test('an unknown value is refused rather than guessed', () => {
    const e = errorOf(() => podOptsOut({ 'tessera.dev/inject': 'no' }));
    expect(e.code).toBe('TESSERA_ERR_INJECT_BAD_ANNOTATION');
    expect(e.message).toContain('annotation tessera.dev/inject');
  });
});

describe('tessera.dev/inbound-ports', () => {
  test('ports in order, per-port protocol, default from tessera.dev/inbound-protocol', () => {
    expect(parseInboundPorts({ 'tessera.dev/inbound-ports': ' 8080, 9090/grpc ,7000/tcp', 'tessera.dev/inbound-protocol': 'http2' })).toEqual([
      { appPort: 8080, protocol: 'http2' },
      { appPort: 9090, protocol: 'grpc' },
      { appPort: 7000, protocol: 'tcp' },
    ]);
    expect(parseInboundPorts({ 'tessera.dev/inbound-ports': '80' })).toEqual([{ appPort: 80, protocol: 'http' }]);
    expect(parseInboundPorts({})).toEqual([]);
  });
  test.each([
    ['', 'is empty'],
    ['8080,', 'item 2 is empty'],
    ['http', '"http" is not a port number'],
    ['0', 'not a port number'],
    ['65536', 'not a port number'],
    ['080', 'not a port number'],
    ['8080,8080', 'listed twice'],
    ['15006', "proxy's reserved range"],
    ['8080/udp', 'protocol "udp"'],
    ['8080/http/x', 'expected port[/protocol]'],
  ])('%j is refused (%s)', (value, fragment) => {
    const e = errorOf(() => parseInboundPorts({ 'tessera.dev/inbound-ports': value }));
    expect(e.code).toBe('TESSERA_ERR_INJECT_BAD_ANNOTATION');
    expect(e.annotation).toBe('tessera.dev/inbound-ports');
    expect(e.message).toMatch(/^annotation tessera\.dev\/inbound-ports: /);
    expect(e.message).toContain(fragment);
  });
  test('a bad default protocol names its own annotation', () => {
    const e = errorOf(() => parseInboundPorts({ 'tessera.dev/inbound-ports': '80', 'tessera.dev/inbound-protocol': 'h3' }));
    expect(e.annotation).toBe('tessera.dev/inbound-protocol');
  });
  test('at most 32 ports', () => {
    const ports = Array.from({ length: 33 }, (_, i) => 20000 + i).join(',');
    expect(errorOf(() => parseInboundPorts({ 'tessera.dev/inbound-ports': ports })).message).toContain('at most 32');
  });
});

describe('tessera.dev/outbound', () => {
  const out = (v: string, inbound: number[] = [], declared: [number, string][] = []) => parseOutbound({ 'tessera.dev/outbound': v }, inbound, new Map(declared));
  test('entries with defaults and options; local ports skip explicit ones', () => {
    expect(
      out(
        'api=spiffe://cluster.local/ns/default/sa/api@api.default.svc:15006, ' +
          'db=spiffe://cluster.local/ns/data/sa/pg@10.0.0.7:15006;protocol=tcp;local=15101,\n' +
          'v6=spiffe://other.org/svc@[fd00::1]:443;protocol=grpc',
      ),
    ).toEqual([
      { name: 'api', spiffeId: 'spiffe://cluster.local/ns/default/sa/api', upstream: 'api.default.svc:15006', localPort: 15102, protocol: 'http' },
      { name: 'db', spiffeId: 'spiffe://cluster.local/ns/data/sa/pg', upstream: '10.0.0.7:15006', localPort: 15101, protocol: 'tcp' },
      { name: 'v6', spiffeId: 'spiffe://other.org/svc', upstream: '[fd00::1]:443', localPort: 15103, protocol: 'grpc' },
    ]);
  });
  test('a local port outside the reserved range is allowed', () => {
    expect(out('api=spiffe://td/a@api:80;local=9000')[0]!.localPort).toBe(9000);
  });
  test.each([
    ['', 'is empty'],
    ['api', 'expected name=spiffe-id@host:port'],
    ['=spiffe://td/a@h:1', 'expected name=spiffe-id@host:port'],
    ['API=spiffe://td/a@h:1', 'is not a DNS label'],
    ['api=spiffe://td/a', 'expected spiffe-id@host:port'],
    ['api=https://td/a@h:1', 'is not a SPIFFE ID'],
    ['api=spiffe://TD/a@h:1', 'is not a SPIFFE ID'],
    ['api=spiffe://td/a@h', 'is not host:port'],
    ['api=spiffe://td/a@Api.svc:80', 'is not host:port'],
    ...['api..svc', 'api.svc..', '.api.svc', '.'].map((h) => [`api=spiffe://td/a@${h}:80`, 'is not host:port'] as [string, string]),
    ['api=spiffe://td/a@h:99999', 'is not host:port'],
    // Audit 59c F2: IPv4 addresses in other forms than dotted decimal, and brackets around what is not IPv6.
    ...['2130706433', '0x7f.1', '1.2.3', '0', '010.0.0.1', '999.1.1.1', '1.2.3.4.', '[:::::]', '[1.2.3.4]'].map((h) => [`api=spiffe://td/a@${h}:15006`, 'is not host:port'] as [string, string]),
    ['api=spiffe://td/a@h:1;local', 'is not key=value'],
    ['api=spiffe://td/a@h:1;local=x', 'local port "x"'],
    ['api=spiffe://td/a@h:1;colour=red', 'unknown option "colour"'],
    ['api=spiffe://td/a@h:1;protocol=udp', 'protocol "udp"'],
    ['api=spiffe://td/a@h:1;local=1;local=2', 'given twice'],
    ['api=spiffe://td/a@h:1,api=spiffe://td/b@h:2', 'used twice'],
    ['api=spiffe://td/a@h:1,', 'entry 2 is empty'],
    ['api=spiffe://td/a@h:1;local=15000', 'used by the proxy itself'],
    ['api=spiffe://td/a@h:1;local=15006', 'used by the proxy itself'],
    ['a=spiffe://td/a@h:1;local=9000,b=spiffe://td/b@h:1;local=9000', 'already used'],
  ])('%j is refused (%s)', (value, fragment) => {
    const e = errorOf(() => out(value));
    expect(e.code).toBe('TESSERA_ERR_INJECT_BAD_ANNOTATION');
    expect(e.annotation).toBe('tessera.dev/outbound');
    expect(e.message).toMatch(/^annotation tessera\.dev\/outbound: /);
    expect(e.message).toContain(fragment);
  });
  test('hosts in dotted decimal, [IPv6] and DNS names are taken as written', () => {
    for (const h of ['127.0.0.1', '[::1]', '[fd00::1]', 'api.default.svc', '10.0.0.255', 'api.default.svc.cluster.local.']) expect(out(`api=spiffe://td/a@${h}:80`)[0]!.upstream).toBe(`${h}:80`);
  });
  // Audit 59c F4: a 1 MB value came back twice in a 2 MB message (then a 503 past the answer budget), with its
  // newlines and NULs as they were; kubectl prints the message.
  test('a refusal quotes a long or odd value bounded, its control characters escaped', () => {
    const e = errorOf(() => parseInboundPorts({ 'tessera.dev/inbound-ports': `8080,${'9\n\u0000'.repeat(1)}${'x'.repeat(1_000_000)}` }));
    expect(e.code).toBe('TESSERA_ERR_INJECT_BAD_ANNOTATION');
    expect(e.message.length).toBeLessThan(1_200);
    expect(e.message).toMatch(/… \(\d+ more characters\)$/);
    const odd = errorOf(() => parseInboundPorts({ 'tessera.dev/inbound-ports': '80\n81\u0000\u001b[2J' }));
    expect(hasControlCharacters(odd.message)).toBe(false);
    expect(odd.message).toContain('\\x0a');
  });
  test('a local port equal to an inbound app port is refused', () => {
    expect(errorOf(() => out('api=spiffe://td/a@h:1;local=8080', [8080])).message).toContain('already used');
  });
  // Audit 38b, F5: the sidecar starts first and holds the port, so the app's own bind fails.
  test('a local port a container declares is refused alike, naming the container', () => {
    const e = errorOf(() => out('db=spiffe://td/b@h:1;local=9000,api=spiffe://td/a@h:1;local=8080', [], [[8080, 'web']]));
    expect(e).toMatchObject({ code: 'TESSERA_ERR_INJECT_BAD_ANNOTATION', annotation: 'tessera.dev/outbound' });
    expect(e.message).toBe('annotation tessera.dev/outbound: upstream "api": local port 8080 is already used by container "web", which declares it (containerPort 8080)');
    expect(out('api=spiffe://td/a@h:1;local=8081', [], [[8080, 'web']])[0]!.localPort).toBe(8081);
  });
});
