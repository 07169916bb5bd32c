// Which service a forward-proxy request names, by family: ports, IPv6 brackets, a final dot, upper case, the
// Kubernetes DNS suffixes, and malformed authorities (userinfo, fragment, path, garbage, impossible ports) refused;
// absolute-form targets split into authority and origin-form path, and the two composed as the listener does.
import { describe, expect, test } from 'vitest';
import { hostOf, serviceOfHost, splitAbsoluteTarget } from '../../../../proxy/src/routing/service-host.js';

describe('hostOf', () => {
  test.each([
    ['api', 'api'],
    ['api:80', 'api'],
    ['api:8080', 'api'],
    ['api:1', 'api'],
    ['api:65535', 'api'],
    ['api:080', 'api'],
    ['api.default', 'api.default'],
    ['api.default:443', 'api.default'],
    ['API.Default:443', 'api.default'],
    ['API', 'api'],
    ['api.default.', 'api.default'],
    ['api.default.:8080', 'api.default'],
    ['API.DEFAULT.SVC.CLUSTER.LOCAL.', 'api.default.svc.cluster.local'],
    ['127.0.0.1', '127.0.0.1'],
    ['127.0.0.1:15001', '127.0.0.1'],
    ['[::1]', '::1'],
    ['[::1]:443', '::1'],
    ['[FE80::1]:80', 'fe80::1'],
    ['[2001:db8::a:B]', '2001:db8::a:b'],
    ['[::ffff:127.0.0.1]:8080', '::ffff:127.0.0.1'],
  ])('%j → %j', (authority, host) => {
    expect(hostOf(authority)).toBe(host);
  });

  test.each([
    // empty or port alone
    '',
    ':80',
    'api:',
    // ports that cannot be ports
    'api:0',
    'api:65536',
    'api:99999',
    'api:123456',
    'api:-1',
    'api:+80',
    'api:80:90',
    'api:8o',
    '[::1]:0',
    '[::1]:70000',
    // userinfo, path, query, fragment
    'user@api',
    'user@api:80',
    'user:pw@api:80',
    '@api',
    'api/',
    'api/x',
    'api?x=1',
    'api#frag',
    'api:80#frag',
    // IPv6 without or with broken brackets
    '::1',
    '[::1',
    '::1]',
    '[::1]x',
    '[::1]:',
    '[zz::1]',
    '[]',
    '[::1%eth0]',
    // whitespace, controls, percent-encoding, garbage
    ' api',
    'api ',
    'ap i',
    'api\t',
    'api\r\n',
    'api\x00',
    'api\x7f',
    'ap%69',
    'api\u00e9',
    'a,b',
    'a;b',
    '*',
  ])('%j is refused', (authority) => {
    expect(hostOf(authority)).toBeNull();
  });
});

describe('serviceOfHost', () => {
  const names = new Set(['api.default', 'web', 'foo.svc', 'payments.prod']);
  const known = (name: string) => names.has(name);

  test.each([
    ['api.default', 'api.default'],
    ['api.default:8080', 'api.default'],
    ['API.Default', 'api.default'],
    ['api.default.', 'api.default'],
    ['api.default.svc', 'api.default'],
    ['api.default.svc:80', 'api.default'],
    ['api.default.svc.cluster.local', 'api.default'],
    ['api.default.svc.cluster.local:443', 'api.default'],
    ['API.DEFAULT.SVC.CLUSTER.LOCAL.:443', 'api.default'],
    ['web', 'web'],
    ['payments.prod.svc.cluster.local', 'payments.prod'],
    ['payments.prod.svc.cluster.local.', 'payments.prod'],
    // `foo.svc` is service foo in namespace svc, as kube-dns reads it (found as foo.svc.svc.cluster.local).
    ['foo.svc', 'foo.svc'],
    ['foo.svc.svc', 'foo.svc'],
    ['foo.svc.svc.cluster.local', 'foo.svc'],
  ])('%j → %j', (authority, service) => {
    expect(serviceOfHost(authority, known)).toBe(service);
  });

  test.each([
    // `X.svc` is X in namespace svc, never the default namespace's X (kube-dns and the control plane agree).
    'web.svc',
    'web.svc:80',
    'WEB.SVC',
    'web.svc.cluster.local',
    'web.svc.cluster.local.',
    'api.svc',
    'api.svc.cluster.local',
    // A final dot makes a name absolute in DNS: only the full form resolves.
    'api.default.svc.',
    // Another cluster domain than cluster.local is not read.
    'api.default.svc.corp.example',
    'api',
    'default',
    'api.default.svc.cluster',
    'api.default.cluster.local',
    'api.default.svc.cluster.local.svc.cluster.local',
    'x.api.default',
    'api.default.x',
    'api.defaultsvc',
    'svc',
    '.svc',
    '.svc.cluster.local',
    '.',
    '..',
    'web..',
    '[::1]:80',
    '127.0.0.1',
    'user@api.default',
    'api.default:99999',
    'api.default#x',
    'api.default/x',
    'api.default svc',
    '',
  ])('%j names no service', (authority) => {
    expect(serviceOfHost(authority, known)).toBeNull();
  });

  test('only the host, lower-cased and stripped, is looked up', () => {
    const asked: string[] = [];
    serviceOfHost('API.Default.SVC.Cluster.Local.:8080', (n) => {
      asked.push(n);
      return false;
    });
    expect(asked).toEqual(['api.default.svc.cluster.local', 'api.default']);
  });
});

describe('splitAbsoluteTarget', () => {
  test.each([
    ['http://api/x', 'api', '/x'],
    ['http://api', 'api', '/'],
    ['http://api/', 'api', '/'],
    ['http://api?q=1', 'api', '/?q=1'],
    ['http://api:8080/a/b?c=d&e', 'api:8080', '/a/b?c=d&e'],
    ['HTTP://Api.Default/x', 'Api.Default', '/x'],
    ['Http://api/x', 'api', '/x'],
    ['http://[::1]:15001/x', '[::1]:15001', '/x'],
    ['http://api/x@y', 'api', '/x@y'],
    ['http://api/a:b', 'api', '/a:b'],
    ['http://api.default.svc.cluster.local:80/v1', 'api.default.svc.cluster.local:80', '/v1'],
  ])('%j → %j + %j', (target, authority, path) => {
    expect(splitAbsoluteTarget(target)).toEqual({ authority, path });
  });

  test.each(['/x', '*', '', 'api:80', 'https://api/', 'ftp://api/', 'http:/api', 'http:api', 'http://', 'http:///x', 'http://?x', 'http://user@api/', 'http://user:pw@api:80/', 'http://@api/', 'http://api#frag', 'http://a@b', ' http://api/', 'xhttp://api/'])('%j is not an absolute-form target', (target) => {
    expect(splitAbsoluteTarget(target)).toBeNull();
  });

  test('a split authority names a service only when it is a valid host', () => {
    const known = (n: string) => n === 'api.default';
    const service = (target: string) => {
      const a = splitAbsoluteTarget(target);
      return a && serviceOfHost(a.authority, known);
    };
    expect(service('http://api.default.svc.cluster.local:8080/x')).toBe('api.default');
    expect(service('http://API.default./x')).toBe('api.default');
    for (const bad of ['http://api.default:99999/x', 'http://api.default:/x', 'http://api.default:80:80/x', 'http://api default/x', 'http://[api.default]/x', 'http://api.default%2e/x']) expect(service(bad)).toBeNull();
  });
});
