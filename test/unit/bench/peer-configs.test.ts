// Peer configurations (nginx, HAProxy, Tessera): the settings that make the comparison fair, checked as text and,
// when the binaries are installed, by the peers' own config checkers against real certificate files.
import { X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BenchPki, CLIENT_ID, type LeafFiles, SERVER_DNS, SERVER_ID } from '../../../bench/harness/bench-pki.js';
import { findBinary } from '../../../bench/harness/peer-binaries.js';
import { haproxyClientProxyConfig, haproxyServerProxyConfig, parseShowInfo, uriGeneralNameHex } from '../../../bench/peers/haproxy-config.js';
import { nginxAppConfig, nginxClientProxyConfig, nginxHandshakeServerConfig, nginxServerProxyConfig, parseStubStatus } from '../../../bench/peers/nginx-config.js';
import { allowPolicyYaml, sumMetric, tesseraClientProxyConfig, tesseraServerProxyConfig } from '../../../bench/peers/tessera-config.js';
import { decodeCertificates } from '../../../common/pki/pem.js';
import { parseProxyConfig } from '../../../proxy/src/config/proxy-config.js';

let dir: string;
let pki: BenchPki;
let client: LeafFiles;
let server: LeafFiles;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-bench-cfg-'));
  pki = await BenchPki.create(dir);
  client = await pki.writeLeaf('client', CLIENT_ID);
  server = await pki.writeLeaf('server', SERVER_ID);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('bench PKI', () => {
  test('leaves carry the SPIFFE URI SAN, serverAuth + clientAuth, and come with the intermediate', () => {
    const chain = decodeCertificates(client.chainPem).map((d) => new X509Certificate(d));
    expect(chain).toHaveLength(2);
    expect(chain[0]!.subjectAltName).toBe(`URI:${CLIENT_ID}`);
    expect(chain[0]!.checkIssued(chain[1]!)).toBe(true);
    expect(chain[0]!.keyUsage).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']));
    const serverLeaf = new X509Certificate(decodeCertificates(server.chainPem)[0]!);
    expect(serverLeaf.subjectAltName).toContain(`URI:${SERVER_ID}`);
    expect(serverLeaf.subjectAltName).toContain(`DNS:${SERVER_DNS}`);
  });

  test('the HAProxy SPIFFE match string is found in the client leaf DER, not in the server leaf', () => {
    const der = (l: LeafFiles) => decodeCertificates(l.chainPem)[0]!.toString('hex').toUpperCase();
    expect(der(client)).toContain(uriGeneralNameHex(CLIENT_ID));
    expect(der(server)).not.toContain(uriGeneralNameHex(CLIENT_ID));
    expect(uriGeneralNameHex('spiffe://a/b')).toBe(`860C${Buffer.from('spiffe://a/b').toString('hex').toUpperCase()}`);
  });
});

describe('nginx', () => {
  const conf = () => ({
    app: nginxAppConfig({ prefix: dir }, 18080),
    server: nginxServerProxyConfig({ prefix: dir, listenPort: 18443, appPort: 18080, statusPort: 18081, chainFile: server.chainFile, keyFile: server.keyFile, rootFile: pki.rootFile }),
    client: nginxClientProxyConfig({ prefix: dir, listenPort: 18001, upstreamPort: 18443, chainFile: client.chainFile, keyFile: client.keyFile, rootFile: pki.rootFile, serverName: SERVER_DNS }),
    handshake: nginxHandshakeServerConfig({ prefix: dir, listenPort: 18444, chainFile: server.chainFile, keyFile: server.keyFile, rootFile: pki.rootFile }),
  });

  test('one worker, no access log, state in the work dir, chain depth 2 both ways, pooled upstream', () => {
    const c = conf();
    for (const text of Object.values(c)) {
      expect(text).toContain('worker_processes 1;');
      expect(text).toContain('access_log off;');
      expect(text).toContain(`pid ${dir}/`);
      expect(text).not.toMatch(/\/var\/(log|run|lib)/);
    }
    expect(c.server).toMatch(/ssl_verify_client on;[\s\S]*ssl_verify_depth 2;/);
    expect(c.client).toMatch(/proxy_ssl_verify on;[\s\S]*proxy_ssl_verify_depth 2;/);
    expect(c.client).toContain(`proxy_ssl_name ${SERVER_DNS};`);
    expect(c.client).toMatch(/keepalive 1024;[\s\S]*keepalive_requests 1000000;/);
    expect(c.client).toContain('proxy_set_header Connection "";');
    expect(c.handshake).toContain('keepalive_timeout 0;');
  });

  test.skipIf(!findBinary('nginx'))('nginx -t accepts every generated config', async () => {
    for (const [name, text] of Object.entries(conf())) {
      const file = join(dir, `${name}.conf`);
      await writeFile(file, text);
      expect(() => execFileSync(findBinary('nginx')!, ['-t', '-q', '-e', join(dir, 'startup.log'), '-p', dir, '-c', file], { stdio: 'pipe' })).not.toThrow();
    }
  });

  test('stub_status parsing', () => {
    expect(parseStubStatus('Active connections: 2 \nserver accepts handled requests\n 17 17 1034 \nReading: 0 Writing: 1 Waiting: 1 \n')).toEqual({ accepts: 17, handled: 17, requests: 1034 });
    expect(parseStubStatus('nope')).toBeNull();
  });
});

describe('HAProxy', () => {
  const conf = (http2 = false) => ({
    server: haproxyServerProxyConfig({ statsSocket: join(dir, 's.sock'), listenPort: 18443, appPort: 18080, combinedFile: server.combinedFile, rootFile: pki.rootFile, allowedClientId: CLIENT_ID, http2 }),
    client: haproxyClientProxyConfig({ statsSocket: join(dir, 'c.sock'), listenPort: 18001, upstreamPort: 18443, combinedFile: client.combinedFile, rootFile: pki.rootFile, serverName: SERVER_DNS, http2 }),
  });

  test('one thread, client certificate required and its SPIFFE ID matched, server verified by name, shared pool', () => {
    const c = conf();
    for (const text of Object.values(c)) {
      expect(text).toContain('nbthread 1');
      expect(text).toContain('http-reuse always');
    }
    expect(c.server).toContain(`ca-file ${pki.rootFile} verify required`);
    expect(c.server).toContain(`tcp-request session reject unless { ssl_c_der,hex -m sub ${uriGeneralNameHex(CLIENT_ID)} }`);
    expect(c.client).toContain(`verify required verifyhost ${SERVER_DNS}`);
    expect(conf(true).client).toMatch(/proto h2[\s\S]*alpn h2/);
  });

  const h2UpstreamClient = () =>
    haproxyClientProxyConfig({ statsSocket: join(dir, 'c.sock'), listenPort: 18001, upstreamPort: 18443, combinedFile: client.combinedFile, rootFile: pki.rootFile, serverName: SERVER_DNS, h2Upstream: true });

  test('h2 upstream: HTTP/1.1 bind on the client side, alpn h2 on its server line and on the mTLS bind', () => {
    const text = h2UpstreamClient();
    expect(text).toContain('bind 127.0.0.1:18001\n');
    expect(text).not.toContain('proto h2');
    expect(text).toMatch(/server s1 [^\n]* alpn h2\n/);
    expect(conf(false).client).not.toContain('alpn');
    expect(conf(true).server).toContain('alpn h2,http/1.1');
  });

  test.skipIf(!findBinary('haproxy'))('haproxy -c accepts the generated configs', async () => {
    const texts: [string, string][] = [...Object.entries(conf(false)), ...Object.entries(conf(true)).map(([n, t]): [string, string] => [`${n}-h2`, t]), ['client-h2up', h2UpstreamClient()]];
    for (const [name, text] of texts) {
      const file = join(dir, `${name}.cfg`);
      await writeFile(file, text);
      expect(() => execFileSync(findBinary('haproxy')!, ['-c', '-q', '-f', file], { stdio: 'pipe' })).not.toThrow();
    }
  });

  test('show info parsing', () => {
    expect(parseShowInfo('Name: HAProxy\nCumConns: 40\nCumSslConns: 33\n')['CumSslConns']).toBe('33');
  });
});

describe('Tessera', () => {
  test('proxy configs use the DESIGN.md section 8 keys, and the policy allows exactly the client', () => {
    const identity = { certFile: server.chainFile, keyFile: server.keyFile, bundleFile: pki.rootFile };
    const authorization = { policiesDir: join(dir, 'p') };
    const s = parse(tesseraServerProxyConfig({ identity, listenPort: 18443, appPort: 18080, adminPort: 18900, authorization }));
    expect(s).toEqual({
      identity: { files: identity },
      inbound: [{ name: 'app', listen: '127.0.0.1:18443', forwardTo: '127.0.0.1:18080', protocol: 'http' }],
      authorization: { policiesDir: join(dir, 'p') },
      admin: { listen: '127.0.0.1:18900' },
      telemetry: { accessLog: 'off' },
    });
    const c = parse(tesseraClientProxyConfig({ identity, listenPort: 18001, upstreamPort: 18443, upstreamSpiffeId: SERVER_ID, adminPort: 18901, authorization }));
    expect(c.outbound).toEqual([{ name: 'bench-server', listen: '127.0.0.1:18001', upstream: '127.0.0.1:18443', spiffeId: SERVER_ID, protocol: 'http' }]);
    const p = parse(allowPolicyYaml(SERVER_ID, CLIENT_ID));
    expect(p).toMatchObject({ apiVersion: 'tessera.dev/v1', kind: 'AuthorizationPolicy', spec: { selector: SERVER_ID, action: 'ALLOW', mode: 'enforce', rules: [{ from: [CLIENT_ID] }] } });
  });

  test("the generated configs pass the proxy's own config parser (policy + no log, allow-all + file log)", () => {
    const identity = { certFile: client.chainFile, keyFile: client.keyFile, bundleFile: pki.rootFile };
    const serverFile = join(dir, 'server.yaml');
    const sv = parseProxyConfig(
      tesseraServerProxyConfig({ identity, listenPort: 18443, appPort: 18080, adminPort: 18900, authorization: { policiesDir: join(dir, 'p') } }),
      serverFile,
    );
    expect(sv.inbound[0]).toMatchObject({ listen: { host: '127.0.0.1', port: 18443 }, forwardTo: { port: 18080 }, protocol: 'http' });
    expect(sv.authorization).toEqual({ policiesDir: join(dir, 'p'), defaultAction: 'deny' });
    expect(sv.telemetry.accessLog).toBe('off');
    const logFile = join(dir, 'client-access.log');
    const cl = parseProxyConfig(
      tesseraClientProxyConfig({ identity, listenPort: 18001, upstreamPort: 18443, upstreamSpiffeId: SERVER_ID, adminPort: 18901, authorization: { defaultAction: 'allow' }, accessLog: logFile, protocol: 'http2' }),
      join(dir, 'client.yaml'),
    );
    expect(cl.outbound[0]).toMatchObject({ route: { kind: 'static', upstream: { port: 18443 } }, protocol: 'http2' });
    const route = cl.outbound[0]!.route;
    expect(route.kind === 'static' && route.spiffeId.toString()).toBe(SERVER_ID);
    expect(cl.authorization).toEqual({ defaultAction: 'allow' });
    expect(cl.telemetry.accessLog).toBe(logFile);
    expect(cl.admin.listen).toEqual({ host: '127.0.0.1', port: 18901 });
  });

  test('sumMetric sums every label set of one family and ignores look-alikes', () => {
    const text = [
      '# HELP tessera_upstream_connections_opened_total Upstream connections',
      '# TYPE tessera_upstream_connections_opened_total counter',
      'tessera_upstream_connections_opened_total{upstream="a"} 3',
      'tessera_upstream_connections_opened_total{upstream="b"} 4',
      'tessera_upstream_connections_opened_total_extra 100',
    ].join('\n');
    expect(sumMetric(text, 'tessera_upstream_connections_opened_total')).toBe(7);
    expect(sumMetric(text, 'tessera_missing_total')).toBeNull();
    expect(sumMetric(text, 'tessera_upstream_connections_opened_total', (l) => l.includes('upstream="b"'))).toBe(4);
  });
});
