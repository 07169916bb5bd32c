// head-rewrite.ts keeps its own switch of hop-by-hop names (a switch is cheaper than a Set on the hot path): it must
// say exactly what connection-fields.ts HTTP1_HOP_BY_HOP lists, and the variants must keep their documented shape.
import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { CONNECTION_SPECIFIC, H2_REQUEST_DROP, H2_RESPONSE_DROP, H2_TO_H1_REQUEST_DROP, HTTP1_HOP_BY_HOP } from '../../../../proxy/src/http1/connection-fields.js';
import { isHopByHop } from '../../../../proxy/src/http1/head-rewrite.js';

test('isHopByHop says yes to every HTTP1_HOP_BY_HOP name and no to the rest of the lists', () => {
  for (const n of HTTP1_HOP_BY_HOP) expect(isHopByHop(n), n).toBe(true);
  const others = [...CONNECTION_SPECIFIC, ...H2_REQUEST_DROP, ...H2_TO_H1_REQUEST_DROP, 'content-length', 'x-te'].filter((n) => !HTTP1_HOP_BY_HOP.includes(n));
  for (const n of others) expect(isHopByHop(n), n).toBe(false);
});

test('the switch\'s cases are HTTP1_HOP_BY_HOP, no more', () => {
  const src = readFileSync(new URL('../../../../proxy/src/http1/head-rewrite.ts', import.meta.url), 'utf8');
  const body = src.slice(src.indexOf('function isHopByHop'), src.indexOf('\n}\n', src.indexOf('function isHopByHop')));
  const cases = [...body.matchAll(/case '([^']+)':/g)].map((m) => m[1]);
  expect(cases.sort()).toEqual([...HTTP1_HOP_BY_HOP].sort());
});

test('the variants: te passes on h2 requests only (as trailers), host goes from requests only', () => {
  expect(H2_REQUEST_DROP.has('te')).toBe(false);
  expect(H2_RESPONSE_DROP.has('te')).toBe(true);
  expect(H2_TO_H1_REQUEST_DROP).toContain('te');
  expect(H2_REQUEST_DROP.has('host')).toBe(true);
  expect(H2_TO_H1_REQUEST_DROP).toContain('host');
  expect(H2_RESPONSE_DROP.has('host')).toBe(false);
  for (const n of CONNECTION_SPECIFIC) if (n !== 'te') expect(H2_REQUEST_DROP.has(n), n).toBe(true);
});
