// The one XFCC builder: Envoy's key order and quoting, read back by an Envoy-grammar parser so no certificate
// field can add a key or an element.
import { describe, expect, test } from 'vitest';
import { xfccElement, xfccQuoted, xfccValue } from '../../../../proxy/src/tls/xfcc.js';

const API = 'spiffe://example.org/ns/default/sa/api';
const WEB = 'spiffe://example.org/ns/default/sa/web';
const HASH = 'a'.repeat(64);

/** Envoy's XFCC grammar: elements split on `,`, pairs on `;`, key `=` value, a value optionally double-quoted. */
function parseXfcc(header: string): [string, string][][] {
  const elements: [string, string][][] = [[]];
  let key = '';
  let value = '';
  let inKey = true;
  let quoted = false;
  const end = () => {
    elements[elements.length - 1]!.push([key, value]);
    key = '';
    value = '';
    inKey = true;
  };
  for (let i = 0; i < header.length; i++) {
    const c = header[i]!;
    if (quoted) {
      if (c === '\\') value += header[++i];
      else if (c === '"') quoted = false;
      else value += c;
    } else if (inKey) {
      if (c === '=') inKey = false;
      else key += c;
    } else if (c === '"' && value === '') quoted = true;
    else if (c === ';') end();
    else if (c === ',') {
      end();
      elements.push([]);
    } else value += c;
  }
  end();
  return elements;
}

describe('xfccElement', () => {
  test("a sidecar's element is By, Hash, URI in Envoy's order, SPIFFE IDs bare", () => {
    expect(xfccElement({ by: API, hash: HASH, uri: WEB })).toBe(`By=${API};Hash=${HASH};URI=${WEB}`);
  });

  test('only the parts that exist are written; Subject is always quoted, DNS names each get a key', () => {
    expect(xfccElement({ by: API, hash: HASH })).toBe(`By=${API};Hash=${HASH}`);
    expect(xfccElement({ by: API, hash: HASH, subject: 'O=Tessera Test', dns: ['a.example', 'b.example'] })).toBe(`By=${API};Hash=${HASH};Subject="O=Tessera Test";DNS=a.example;DNS=b.example`);
    expect(xfccElement({ by: API, hash: HASH, subject: '' })).toBe(`By=${API};Hash=${HASH}`);
  });

  test.each([
    ['a;URI=spiffe://example.org/admin'],
    ['a,By=spiffe://example.org/admin'],
    ['x";URI="spiffe://example.org/admin'],
    ['back\\slash"quote'],
    ['=;,"\\'],
  ])('a field holding %j stays one value of one element', (evil) => {
    const header = xfccElement({ by: API, hash: HASH, subject: evil, uri: WEB, dns: [evil] });
    const elements = parseXfcc(header);
    expect(elements).toHaveLength(1);
    expect(elements[0]).toEqual([
      ['By', API],
      ['Hash', HASH],
      ['Subject', evil],
      ['URI', WEB],
      ['DNS', evil],
    ]);
  });

  test('values are bare only when they are plain tokens; non-printable characters become ?', () => {
    expect(xfccValue(WEB)).toBe(WEB);
    expect(xfccValue('a b')).toBe('"a b"');
    expect(xfccValue('')).toBe('""');
    expect(xfccQuoted('a\r\nb\u00e9')).toBe('"a??b?"');
  });

  test("an edge client's element: the text the edge sent before it used this builder", () => {
    const partner = 'spiffe://partner.example/billing';
    expect(xfccElement({ by: API, hash: HASH, subject: 'O=Tessera Test', uri: partner, dns: ['ok.partner.example'] })).toBe(`By=${API};Hash=${HASH};Subject="O=Tessera Test";URI=${partner};DNS=ok.partner.example`);
    expect(xfccElement({ by: API, hash: HASH, subject: 'CN=a";URI=spiffe://example.org/x', dns: ['x.test;URI=y'] })).toBe(`By=${API};Hash=${HASH};Subject="CN=a\\";URI=spiffe://example.org/x";DNS="x.test;URI=y"`);
  });
});
