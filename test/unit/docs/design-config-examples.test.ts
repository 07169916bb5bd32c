// The config examples of DESIGN.md (sections 8, 11 and 12), as written there, load with the real loaders. DESIGN.md
// is not in this repository, so its blocks are copied here verbatim; a fragment (section 11's listeners, section
// 12's store lines) is loaded inside the smallest config it belongs to, and section 8's proxy, which shows both
// identity sources ("exactly one of"), is loaded once with each. Audit 51a F1: `store: { kind: sqlite }` was refused.
import { describe, expect, test } from 'vitest';
import { parseControlPlaneConfig } from '../../../control-plane/src/config/cp-config.js';
import { parseProxyConfig } from '../../../proxy/src/config/proxy-config.js';

const CP_SECTION_8 = `trustDomain: example.org
dataDir: ./data                      # CA keys, SQLite store, admin.sock
listen: 127.0.0.1:8443               # gRPC over TLS (Identity, Config)
adminListen: 127.0.0.1:8444          # HTTP: /healthz /ready /metrics
svid: { ttl: 1h, maxTtl: 24h, backdate: 60s }
attestors:
  joinToken: { enabled: true }
  kubernetes: { issuer: https://kubernetes.default.svc, audience: tessera, jwksFile: ./jwks.json }
policies: { dir: ./policies }        # AuthorizationPolicy YAML files, watched
`;

const PROXY_SECTION_8 = `identity:                            # exactly one of controlPlane / files
  controlPlane:
    address: 127.0.0.1:8443
    bundleFile: ./bootstrap-bundle.pem   # trust anchor for the first contact
    joinToken: <token>                   # or joinTokenFile / kubernetesTokenFile
  files: { certFile: ./svid.pem, keyFile: ./key.pem, bundleFile: ./bundle.pem }   # watched and hot-reloaded
inbound:
  - name: app
    listen: 127.0.0.1:15006
    forwardTo: 127.0.0.1:8080
    protocol: http                   # http | http2 | grpc | tcp
outbound:
  - name: api
    listen: 127.0.0.1:15001
    upstream: 127.0.0.1:25006
    spiffeId: spiffe://example.org/ns/default/sa/api   # the identity the upstream must present
    protocol: http
edge:                                # edge mode: TLS from outside clients, routes to mesh upstreams
  - name: public
    listen: 0.0.0.0:8443
    certFile: ./public.pem
    keyFile: ./public.key
    clientCa: ./clients.pem          # optional: require client certificates
    routes: [{ host: "*", pathPrefix: /, upstream: 127.0.0.1:25006, spiffeId: spiffe://example.org/ns/default/sa/api }]
authorization:
  policiesDir: ./policies            # only when there is no control plane; otherwise policies come from it
admin: { listen: 127.0.0.1:15000 }
workloadApi: { socket: ./workload.sock }
`;

const ROUTING_SECTION_11 = `inbound:
  - { name: app, listen: 127.0.0.2:15006, forwardTo: 127.0.0.1:8080, protocol: http, service: api.default }  # registers this listener
outbound:
  - { name: api, listen: 127.0.0.1:15001, service: api.default, protocol: http }   # balanced over the service's endpoints
  - { name: mesh, listen: 127.0.0.1:15080, mode: http-proxy }                       # routes by Host/authority (and CONNECT) to services
`;

const STORE_SECTION_12 = [
  'store: { kind: sqlite }                                   # default: <dataDir>/tessera.db',
  'store: { kind: postgres, url: postgres://user@127.0.0.1:5432/tessera }   # or urlFile: ./db-url (secret)',
];

const FILE = '/etc/tessera/example.yaml';
const CP_BASE = 'trustDomain: example.org\ndataDir: ./data\n';
const PROXY_CP_IDENTITY = 'identity:\n  controlPlane: { address: 127.0.0.1:8443, bundleFile: ./bundle.pem, joinTokenFile: ./join-token }\n';

describe('DESIGN.md config examples load as written', () => {
  test('section 8, control plane', () => {
    expect(parseControlPlaneConfig(CP_SECTION_8, FILE).trustDomain.name).toBe('example.org');
  });

  test('section 8, proxy: with the files identity (and its policiesDir), and with the control plane (without it)', () => {
    const files = parseProxyConfig(PROXY_SECTION_8.replace(/^ {2}controlPlane:\n( {4}.*\n)+/m, ''), FILE);
    expect(files.identity.kind).toBe('files');
    expect([files.inbound.length, files.outbound.length, files.edge.length]).toEqual([1, 1, 1]);
    // With a control plane, policies come from it: DESIGN's own comment on policiesDir.
    const withCp = PROXY_SECTION_8.replace(/^ {2}files: .*\n/m, '').replace(/^authorization:\n.*\n/m, '');
    expect(parseProxyConfig(withCp, FILE).identity.kind).toBe('controlPlane');
  });

  test('section 11, service keys in a proxy with a control plane', () => {
    const c = parseProxyConfig(PROXY_CP_IDENTITY + ROUTING_SECTION_11, FILE);
    expect(c.inbound[0]!.registration?.service).toBe('api.default');
    expect(c.outbound.map((o) => o.route.kind)).toEqual(['service', 'http-proxy']);
  });

  test('section 12, each store line in a control-plane config', () => {
    const [sqlite, postgres] = STORE_SECTION_12.map((line) => parseControlPlaneConfig(`${CP_BASE}${line}\n`, FILE).store);
    expect(sqlite).toEqual({ kind: 'sqlite' });
    expect(postgres).toMatchObject({ kind: 'postgres', source: { url: 'postgres://user@127.0.0.1:5432/tessera' } });
  });
});
