// The edge's forwarding fields: built from the connection for an outside client, extended for a trusted proxy; the
// client-address fields (x-real-ip and its kin) follow the same rule.
import { describe, expect, test } from 'vitest';
import { clientAddressOf, forwardedHeaders, trustedMatcher } from '../../../../proxy/src/edge/forwarded-headers.js';

const claims: Record<string, string> = { 'x-real-ip': '6.6.6.6', 'true-client-ip': '6.6.6.7', 'x-forwarded-for': '6.6.6.8' };
const get = Object.entries(claims);

describe('forwardedHeaders', () => {
  test('an outside client: every field from the connection, its client-address claims not carried', () => {
    const h = forwardedHeaders({ remoteAddress: '::ffff:10.0.0.7', host: 'a.example', incomingXff: '6.6.6.8', incomingForwarded: 'for=6.6.6.8', incomingProto: 'http', trusted: false, incomingClientAddress: clientAddressOf(get) });
    expect(h).toEqual({ 'x-forwarded-for': '10.0.0.7', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'a.example', forwarded: 'for=10.0.0.7;proto=https;host=a.example', 'x-real-ip': '10.0.0.7' });
  });

  test('a trusted proxy: the chain is extended and its client-address fields pass as sent', () => {
    const h = forwardedHeaders({ remoteAddress: '10.0.0.1', host: 'a.example', incomingXff: '6.6.6.8', incomingForwarded: undefined, incomingProto: 'http', trusted: true, incomingClientAddress: clientAddressOf(get) });
    expect(h['x-forwarded-for']).toBe('6.6.6.8, 10.0.0.1');
    expect(h['x-forwarded-proto']).toBe('http');
    expect(h['x-real-ip']).toBe('6.6.6.6');
    expect(h['true-client-ip']).toBe('6.6.6.7');
  });

  test('a trusted proxy that sent no x-real-ip: the connection\'s address; IPv6 is bracketed in Forwarded only', () => {
    const h = forwardedHeaders({ remoteAddress: '::1', host: 'a.example', incomingXff: undefined, incomingForwarded: undefined, incomingProto: undefined, trusted: true });
    expect(h['x-real-ip']).toBe('::1');
    expect(h.forwarded).toBe('for="[::1]";proto=https;host=a.example');
  });

  test('a trusted proxy keeps its forwarding fields (port, prefix), not a path override; an outside client\'s are not read', () => {
    const sent: Record<string, string> = { 'x-forwarded-port': '8443', 'x-forwarded-prefix': '/shop', 'x-original-url': '/admin', 'x-ssl-client-verify': 'SUCCESS' };
    const read = clientAddressOf(Object.entries(sent));
    expect(read).toEqual({ 'x-forwarded-port': '8443', 'x-forwarded-prefix': '/shop' });
    const trusted = forwardedHeaders({ remoteAddress: '10.0.0.1', host: 'a.example', incomingXff: undefined, incomingForwarded: undefined, incomingProto: undefined, trusted: true, incomingClientAddress: read });
    expect(trusted['x-forwarded-prefix']).toBe('/shop');
    const outside = forwardedHeaders({ remoteAddress: '10.0.0.1', host: 'a.example', incomingXff: undefined, incomingForwarded: undefined, incomingProto: undefined, trusted: false, incomingClientAddress: read });
    expect(outside['x-forwarded-prefix']).toBeUndefined();
    expect(outside['x-original-url']).toBeUndefined();
  });

  test('clientAddressOf reads only the client-address fields', () => {
    expect(clientAddressOf(get)).toEqual({ 'x-real-ip': '6.6.6.6', 'true-client-ip': '6.6.6.7' });
  });

  test('a trusted authenticating front end (oauth2-proxy, Authelia, IAP) keeps its user fields, repeats joined', () => {
    const sent: [string, string][] = [['x-auth-request-user', 'alice'], ['x-forwarded-user', 'alice'], ['remote-user', 'alice'], ['remote-groups', 'a'], ['remote-groups', 'b'], ['x-goog-authenticated-user-email', 'a@x'], ['x-ms-client-principal-name', 'alice'], ['accept', '*/*']];
    expect(clientAddressOf(sent)).toEqual({ 'x-auth-request-user': 'alice', 'x-forwarded-user': 'alice', 'remote-user': 'alice', 'remote-groups': 'a, b', 'x-goog-authenticated-user-email': 'a@x', 'x-ms-client-principal-name': 'alice' });
  });

  test('trustedMatcher: an entry written in another spelling of the address matches the peer as Node reports it', () => {
    const m = trustedMatcher(['::ffff:127.0.0.1', '0:0:0:0:0:0:0:1', 'FD00::0007', '::ffff:7f00:2']);
    expect(['127.0.0.1', '::ffff:127.0.0.1', '::1', 'fd00::7', '127.0.0.2', '10.0.0.1', '::2'].map((a) => m(a))).toEqual([true, true, true, true, true, false, false]);
  });

  test('trustedMatcher: exact addresses and IPv4 CIDRs, IPv4-mapped IPv6 too', () => {
    const m = trustedMatcher(['10.1.0.0/16', '192.0.2.1']);
    expect([m('10.1.200.3'), m('::ffff:10.1.0.9'), m('192.0.2.1'), m('10.2.0.1'), m('192.0.2.2')]).toEqual([true, true, true, false, false]);
  });
});
