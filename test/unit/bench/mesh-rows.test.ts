// The mesh scenarios' rows per mode (keep-alive / a connection per request), the HAProxy h2-upstream baseline in
// the summaries, per-side CPU ratios in the headlines, and RSS/PSS idle → under load per side.
import { expect, test } from 'vitest';
import { DIRECT, HAPROXY, HAPROXY_H2, NGINX, NODE_FLOOR, TESSERA, TESSERA_EDGE, TESSERA_H1, meshBaselineFor, meshCprScenario, meshRows, meshScenario } from '../../../bench/scenarios/mesh.js';
import { meshNotes } from '../../../bench/scenarios/mesh-notes.js';
import { PSS_COLUMN, RSS_COLUMN, growthOverIdle, memoryCells, memoryHeadline } from '../../../bench/scenarios/pair-memory.js';
import { pairHeadlines, pairSummaryRows, shortName } from '../../../bench/scenarios/pair-summary.js';
import { findScenario } from '../../../bench/scenarios/registry.js';
import { pairMeasurement } from '../../helpers/pair-measurement.js';

const m = pairMeasurement;

test('keep-alive mode measures every row; a connection per request the pairs and direct, both HAProxy upstreams included', () => {
  expect(meshRows('conn-per-request')).toEqual([DIRECT, TESSERA, TESSERA_H1, NGINX, HAPROXY, HAPROXY_H2]);
  const all = meshRows('keep-alive');
  expect(all).toEqual(expect.arrayContaining([...meshRows('conn-per-request'), TESSERA_EDGE, NODE_FLOOR]));
  expect(all).toHaveLength(11);
  expect(findScenario('mesh-cpr')).toBe(meshCprScenario);
  expect(findScenario('mesh')).toBe(meshScenario);
  // The edge rows have no HAProxy counterpart, h2 upstream or not.
  expect(meshBaselineFor(TESSERA_EDGE, HAPROXY_H2)).toBeNull();
  expect(meshBaselineFor(TESSERA, HAPROXY_H2)).toBe(HAPROXY_H2);
});

test('column names tell the HAProxy baselines apart', () => {
  expect(shortName(NGINX)).toBe('nginx');
  expect(shortName(HAPROXY)).toBe('HAProxy');
  expect(shortName(HAPROXY_H2)).toBe('HAProxy h2');
  expect(shortName('haproxy pair (h2c in, h2 over mTLS)')).toBe('HAProxy');
  const ms = [m(TESSERA, 1, 60, 40), m(HAPROXY, 1, 40, 40), m(HAPROXY_H2, 1, 20, 20), m(TESSERA, 2, 66, 44), m(HAPROXY, 2, 44, 44), m(HAPROXY_H2, 2, 22, 22)];
  const [row] = pairSummaryRows(ms, { variants: [TESSERA], peerBaselines: [HAPROXY, HAPROXY_H2] });
  expect(row!['CPU ÷ HAProxy']).toBe('1.25×');
  expect(row!['CPU ÷ HAProxy h2']).toBe('2.50×');
});

test('headlines give the CPU ratio per side as well as for both proxies', () => {
  const ms = [m(TESSERA, 1, 60, 20), m(NGINX, 1, 40, 40), m(TESSERA, 2, 90, 20), m(NGINX, 2, 50, 40)];
  const [h] = pairHeadlines(ms, TESSERA, { variants: [TESSERA, NGINX], peerBaselines: [NGINX] });
  // both: 80/80 = 1, 110/90 = 1.22; client: 1.5, 1.8; server: 0.5, 0.5
  expect(h).toContain('= 1.11× (1.00–1.22) the nginx pair');
  expect(h).toContain('per side 1.65× (1.50–1.80) client, 0.50× server');
});

test('RSS and PSS cells: idle → median under load per side; "–" when a kind was not sampled', () => {
  const rows = [
    m(TESSERA, 1, 60, 40, { rssIdleMbClient: 50, rssIdleMbServer: 52, rssMbClient: 60, rssMbServer: 58, pssIdleMbClient: 30, pssIdleMbServer: 31, pssMbClient: 40, pssMbServer: 36 }),
    m(TESSERA, 2, 60, 40, { rssIdleMbClient: 50, rssIdleMbServer: 52, rssMbClient: 70, rssMbServer: 60, pssIdleMbClient: 30, pssIdleMbServer: 31, pssMbClient: 44, pssMbServer: 38 }),
    m(NGINX, 1, 40, 40, { rssMbClient: 19, rssMbServer: 20 }),
  ];
  expect(memoryCells(rows, TESSERA)).toEqual({ [RSS_COLUMN]: '50→65 / 52→59', [PSS_COLUMN]: '30→42 / 31→37' });
  expect(memoryCells(rows, NGINX)).toEqual({ [RSS_COLUMN]: '19 / 20', [PSS_COLUMN]: '–' });
  expect(pairSummaryRows(rows, { variants: [TESSERA], peerBaselines: [NGINX] })[0]![PSS_COLUMN]).toBe('30→42 / 31→37');
  // growth = the worst window over idle: 70 / 50
  expect(growthOverIdle(rows, TESSERA, 'rss', 'Client')).toBeCloseTo(1.4);
  expect(growthOverIdle(rows, NGINX, 'rss', 'Client')).toBeNull();
  const [h] = memoryHeadline(rows, TESSERA);
  expect(h).toContain('client side RSS 50 → 65 (max 70, 1.40× idle), PSS 30 → 42 (max 44, 1.47× idle)');
  expect(h).toContain('server side RSS 52 → 59 (max 60, 1.15× idle)');
  expect(memoryHeadline(rows, NGINX)[0]).toContain('client side RSS 19 under load (max 19)');
  expect(memoryHeadline([m(TESSERA, 1, 1, 1)], TESSERA)).toEqual([]);
});

test('notes follow the mode: the connection-per-request load, and a --rate that does not apply to it', () => {
  const names = { tessera: TESSERA, tesseraH1: TESSERA_H1, tesseraLog: 'l', tesseraTrace: 't', haproxy: HAPROXY, haproxyH2: HAPROXY_H2, tesseraEdge: TESSERA_EDGE, nginxEdge: 'ne' };
  const opts = { connections: 32, warmupMs: 500, durationMs: 1500 };
  const cpr = meshNotes(opts, 'conn-per-request', names, true);
  expect(cpr[0]).toContain('NEW plaintext TCP connection per request');
  expect(cpr[0]).toContain('`--rate` does not apply');
  expect(cpr.join('\n')).not.toContain('Edge rows');
  const ka = meshNotes({ ...opts, rateRps: 1000 }, 'keep-alive', names);
  expect(ka[0]).toContain("HTTP/1.1 keep-alive, 32 connections, a fixed 1000 req/s open loop from the harness's paced generator");
  expect(meshNotes(opts, 'keep-alive', names)[0]).toContain('autocannon, HTTP/1.1 keep-alive, 32 connections, pipelining 1, closed loop');
  const byWrk = meshNotes({ ...opts, wrk: { binary: '/usr/bin/wrk', script: 'x.lua' } }, 'keep-alive', names)[0];
  expect(byWrk).toContain('Load: wrk (`wrk -t1 -c32`');
  expect(byWrk).not.toContain('autocannon');
  expect(ka.join('\n')).toContain('Edge rows');
  expect(ka.join('\n')).toContain(`"${HAPROXY_H2}": HTTP/1.1 in, HTTP/2 over mTLS`);
});
