// Name constraints as RFC 5280 §4.2.1.10 and OpenSSL read them, for the names a path carries: a URI's host
// ("example.org" itself, ".example.org" the hosts below it) and DNS names (the name and the names below it).
import { describe, expect, test } from 'vitest';
import { nameConstraintViolation } from '../../../../common/spiffe/name-constraints.js';
import type { NameConstraints, NameSubtree } from '../../../../common/spiffe/x509-fields.js';

const uri = (value: string): NameSubtree => ({ type: 'uri', value });
const dns = (value: string): NameSubtree => ({ type: 'dns', value });
const nc = (permitted: NameSubtree[], excluded: NameSubtree[] = []): NameConstraints => ({ permitted, excluded });
const names = (uris: string[], dnsNames: string[] = []) => ({ uris, dns: dnsNames });

describe('nameConstraintViolation', () => {
  test('URI hosts: exact, or below with a leading dot; case-insensitive; userinfo and port ignored', () => {
    expect(nameConstraintViolation(nc([uri('example.org')]), names(['spiffe://example.org/ns/a']))).toBeNull();
    expect(nameConstraintViolation(nc([uri('Example.ORG')]), names(['spiffe://example.org']))).toBeNull();
    expect(nameConstraintViolation(nc([uri('.example.org')]), names(['spiffe://eu.example.org/x']))).toBeNull();
    expect(nameConstraintViolation(nc([uri('.example.org')]), names(['spiffe://example.org/x']))).toContain('outside its permitted subtrees');
    expect(nameConstraintViolation(nc([uri('example.org')]), names(['spiffe://evil.example.org/x']))).toContain('outside');
    // The host as OpenSSL reads it: up to the first ":" or "/" (userinfo is not skipped).
    expect(nameConstraintViolation(nc([], [uri('evil.test')]), names(['spiffe://evil.test:1@good.test']))).toContain('excluded subtree evil.test');
    expect(nameConstraintViolation(nc([uri('good.test')]), names(['spiffe://evil.test:1@good.test']))).toContain('outside');
    expect(nameConstraintViolation(nc([], [uri('example.org')]), names(['spiffe://example.org/x']))).toContain('excluded subtree example.org');
    expect(nameConstraintViolation(nc([uri('example.org')]), names(['urn:x:y']))).toContain('without a host');
  });

  test('DNS names: the name and those below it; a leading dot only below; names of one type leave the other free', () => {
    expect(nameConstraintViolation(nc([dns('partner.test')]), names([], ['partner.test', 'api.partner.test']))).toBeNull();
    expect(nameConstraintViolation(nc([dns('.partner.test')]), names([], ['partner.test']))).toContain('outside');
    expect(nameConstraintViolation(nc([dns('partner.test')]), names([], ['evilpartner.test']))).toContain('outside');
    expect(nameConstraintViolation(nc([], [dns('internal.test')]), names([], ['db.internal.test']))).toContain('excluded');
    expect(nameConstraintViolation(nc([dns('partner.test')]), names(['spiffe://example.org/x']))).toBeNull();
    // A host-less URI (a URN) under DNS-only constraints: unconstrained, as in OpenSSL.
    expect(nameConstraintViolation(nc([dns('partner.test')]), names(['urn:example:partner:api'], ['api.partner.test']))).toBeNull();
    // No DNS SAN: a CN that reads as a host name is held to the DNS constraints (OpenSSL's CN check); others are not.
    expect(nameConstraintViolation(nc([dns('good.test')]), { uris: [], dns: [], cns: ['evil.test'] })).toContain('DNS name evil.test');
    expect(nameConstraintViolation(nc([dns('good.test')]), { uris: [], dns: [], cns: ['api.good.test'] })).toBeNull();
    expect(nameConstraintViolation(nc([dns('good.test')]), { uris: [], dns: [], cns: ['Workload API'] })).toBeNull();
    expect(nameConstraintViolation(nc([dns('good.test')]), { uris: [], dns: ['api.good.test'], cns: ['evil.test'] })).toBeNull();
    // Every CN counts, as OpenSSL checks each of them.
    expect(nameConstraintViolation(nc([dns('good.test')]), { uris: [], dns: [], cns: ['api.good.test', 'evil.test'] })).toContain('DNS name evil.test');
  });

  test('a constraint of another kind is refused whole, whatever the names', () => {
    expect(nameConstraintViolation(nc([{ type: 'other', what: 'GeneralName tag 0xa4' }]), names(['spiffe://example.org/x']))).toContain('tag 0xa4');
  });
});
