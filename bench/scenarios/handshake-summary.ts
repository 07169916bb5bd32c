// Summary rows and headlines of the handshake scenario: per-round ratios between variants, and × the crypto floor.
import { type CryptoRates, handshakeFloorUs } from '../harness/crypto-floor.js';
import type { Measurement } from '../harness/scenario.js';
import { formatNumber, formatRatio, formatSpread, perRoundRatios, spread, valuesOf } from '../harness/stats.js';

export interface HandshakeVariantInfo {
  readonly name: string;
  readonly server: 'node' | 'nginx' | 'tessera';
  readonly resume: boolean;
  readonly algorithm: 'ec-p256' | 'rsa-2048';
  readonly tlsGroups?: readonly string[];
  readonly client?: 'node' | 's_time';
}

const round1 = (x: number | null) => (x === null ? null : Math.round(x * 10) / 10);

/** One row holding a rate set and the per-side floors it implies (round 0: measured once, before the rounds). */
export function floorMeasurement(variant: string, source: string, r: CryptoRates): Measurement {
  return {
    variant,
    round: 0,
    source,
    ecdsaP256SignPerSec: r.ecdsaP256SignPerSec === null ? null : Math.round(r.ecdsaP256SignPerSec),
    ecdsaP256VerifyPerSec: r.ecdsaP256VerifyPerSec === null ? null : Math.round(r.ecdsaP256VerifyPerSec),
    ecdhP256PerSec: r.ecdhP256PerSec === null ? null : Math.round(r.ecdhP256PerSec),
    x25519PerSec: r.x25519PerSec === null ? null : Math.round(r.x25519PerSec),
    rsa2048SignPerSec: r.rsa2048SignPerSec === null ? null : Math.round(r.rsa2048SignPerSec),
    rsa2048VerifyPerSec: r.rsa2048VerifyPerSec === null ? null : Math.round(r.rsa2048VerifyPerSec),
    mlkem768EncapPerSec: r.mlkem768EncapPerSec === null ? null : Math.round(r.mlkem768EncapPerSec),
    floorUsPerSide: round1(handshakeFloorUs(r, 'x25519')),
    floorUsPerSideHybrid: round1(handshakeFloorUs(r, 'x25519mlkem768')),
    floorUsPerSideP256: round1(handshakeFloorUs(r, 'p256')),
    floorUsPerSideRsa: round1(handshakeFloorUs(r, 'x25519', 'rsa')),
  };
}

function ratesOf(m: Measurement): CryptoRates {
  const n = (k: string) => (typeof m[k] === 'number' ? (m[k] as number) : null);
  return {
    ecdsaP256SignPerSec: n('ecdsaP256SignPerSec'),
    ecdsaP256VerifyPerSec: n('ecdsaP256VerifyPerSec'),
    ecdhP256PerSec: n('ecdhP256PerSec'),
    x25519PerSec: n('x25519PerSec'),
    rsa2048SignPerSec: n('rsa2048SignPerSec'),
    rsa2048VerifyPerSec: n('rsa2048VerifyPerSec'),
    mlkem768EncapPerSec: n('mlkem768EncapPerSec'),
  };
}

/** The floor a variant is compared with: the server's crypto library, the negotiated group, the leaf algorithm. */
export function floorFor(ms: readonly Measurement[], v: HandshakeVariantInfo, group: string | null): number | null {
  const source = ms.find((m) => m['variant'] === (v.server === 'nginx' ? 'crypto floor (openssl speed)' : 'crypto floor (Node OpenSSL)'));
  if (!source) return null;
  const rates = ratesOf(source);
  const kex = group === 'X25519MLKEM768' ? 'x25519mlkem768' : group === 'X25519' ? 'x25519' : 'p256';
  if (v.resume) {
    const x = kex === 'p256' ? rates.ecdhP256PerSec : rates.x25519PerSec;
    const extra = kex === 'x25519mlkem768' && rates.mlkem768EncapPerSec ? 1e6 / rates.mlkem768EncapPerSec : 0;
    return x ? 1e6 / x + extra : null;
  }
  return handshakeFloorUs(rates, kex, v.algorithm === 'rsa-2048' ? 'rsa' : 'ecdsa');
}

function commonGroup(ms: readonly Measurement[], variant: string): string | null {
  const counts = new Map<string, number>();
  for (const m of ms) if (m['variant'] === variant && typeof m['group'] === 'string') counts.set(m['group'], (counts.get(m['group']) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
}

export function handshakeSummary(ms: readonly Measurement[], variants: readonly HandshakeVariantInfo[], nodeFull: string, nginxFull: string): Measurement[] {
  const rows: Measurement[] = variants.map((v): Measurement => {
    const s = (k: string) => spread(valuesOf(ms, v.name, k));
    const server = s('serverCpuUsPerHandshake');
    if (!server) return { variant: v.name, 'handshakes/s': 'skipped (see notes)' };
    const group = commonGroup(ms, v.name);
    const floor = floorFor(ms, v, group);
    const resumed = s('resumedShare');
    return {
      variant: v.name,
      group: group ?? '–',
      resumed: resumed ? `${Math.round(resumed.median * 100)} %` : '–',
      'handshakes/s': formatSpread(s('handshakesPerSec')),
      'server CPU µs/handshake': formatSpread(server),
      'client CPU µs/handshake': formatSpread(s('clientCpuUsPerHandshake')),
      'capacity per server core /s': formatNumber(1e6 / server.median),
      [`server CPU ÷ ${nodeFull}`]: v.name === nodeFull ? '1' : formatRatio(spread(perRoundRatios(ms, v.name, nodeFull, 'serverCpuUsPerHandshake'))),
      [`server CPU ÷ ${nginxFull}`]: v.name === nginxFull ? '1' : formatRatio(spread(perRoundRatios(ms, v.name, nginxFull, 'serverCpuUsPerHandshake'))),
      '× crypto floor': floor ? `${(server.median / floor).toFixed(1)}× (floor ${formatNumber(floor)} µs)` : '–',
      errors: ms.filter((m) => m['variant'] === v.name).reduce((a, m) => a + Number(m['errors'] ?? 0), 0),
    };
  });
  for (const f of ms.filter((m) => String(m['variant']).startsWith('crypto floor'))) {
    const x = Number(f['floorUsPerSide']);
    const n = (k: string) => (typeof f[k] === 'number' ? formatNumber(f[k] as number) : '–');
    rows.push({
      variant: `${f['variant']}, ${f['source']}`,
      group: 'X25519',
      'server CPU µs/handshake': `${formatNumber(x)} (P-256 ECDHE ${n('floorUsPerSideP256')}, X25519MLKEM768 ${n('floorUsPerSideHybrid')}, RSA leaf ${n('floorUsPerSideRsa')})`,
      'capacity per server core /s': formatNumber(1e6 / x),
    });
  }
  return rows;
}

export function handshakeHeadlines(ms: readonly Measurement[], variants: readonly HandshakeVariantInfo[], nodeFull: string, nginxFull: string): string[] {
  const med = (v: string) => spread(valuesOf(ms, v, 'serverCpuUsPerHandshake'));
  const ratio = (a: string, b: string) => spread(perRoundRatios(ms, a, b, 'serverCpuUsPerHandshake'));
  const out: string[] = [];
  const full = med(nodeFull);
  if (!full) return ['node full handshake not measured.'];
  const find = (p: (v: HandshakeVariantInfo) => boolean) => variants.find(p)?.name;
  const resumed = find((v) => v.resume && v.server === 'node');
  const x25519 = find((v) => v.name.includes('X25519 only'));
  const rsa = find((v) => v.algorithm === 'rsa-2048');
  const perConn = find((v) => v.name.includes('per connection'));
  out.push(`Node server (${nodeFull}): ${formatSpread(full)} µs CPU per full mTLS handshake (${commonGroup(ms, nodeFull) ?? '?'}) = ${formatNumber(1e6 / full.median)} handshakes/s per server core.`);
  if (resumed && med(resumed)) out.push(`Resumed (TLS 1.3 ticket) / full = ${formatRatio(ratio(resumed, nodeFull))} server CPU (${formatNumber(med(resumed)!.median)} vs ${formatNumber(full.median)} µs).`);
  if (x25519 && med(x25519)) out.push(`X25519 only / default X25519MLKEM768 = ${formatRatio(ratio(x25519, nodeFull))} server CPU: the post-quantum hybrid group costs ${formatNumber(full.median - med(x25519)!.median)} µs per handshake.`);
  if (rsa && med(rsa)) out.push(`RSA-2048 / ECDSA P-256 SVIDs = ${formatRatio(ratio(rsa, nodeFull))} server CPU.`);
  if (perConn && med(perConn)) out.push(`A SecureContext built per connection / cached = ${formatRatio(ratio(perConn, nodeFull))} server CPU: cache one per SVID generation.`);
  if (med(nginxFull) && x25519 && med(x25519)) {
    out.push(`Node (X25519 only) / nginx (X25519, system OpenSSL) = ${formatRatio(ratio(x25519, nginxFull))} server CPU per full handshake (nginx ${formatSpread(med(nginxFull))} µs).`);
  }
  const tFull = find((v) => v.server === 'tessera' && !v.resume);
  const tResumed = find((v) => v.server === 'tessera' && v.resume);
  if (tFull && med(tFull)) {
    const t = med(tFull)!;
    const parts = [`Tessera server side (the real proxy, ${commonGroup(ms, tFull) ?? '?'}): ${formatSpread(t)} µs CPU per new mTLS connection with one request = ${formatNumber(1e6 / t.median)} per server core; ${formatRatio(ratio(tFull, nodeFull))} a bare Node tls.Server`];
    if (med(nginxFull)) parts.push(`${formatRatio(ratio(tFull, nginxFull))} nginx`);
    if (tResumed && med(tResumed)) {
      const share = spread(valuesOf(ms, tResumed, 'resumedShare'));
      parts.push(`resumed ${formatSpread(med(tResumed))} µs = ${formatRatio(ratio(tResumed, tFull))} full (${share ? Math.round(share.median * 100) : '?'} % of connections resumed)`);
    }
    out.push(`${parts.join('; ')}.`);
  }
  const hybrid = find((v) => v.server === 'tessera' && v.tlsGroups !== undefined);
  if (tFull && hybrid && med(tFull) && med(hybrid)) {
    const client = (v: string) => spread(valuesOf(ms, v, 'clientCpuUsPerHandshake'))?.median;
    const [cx, ch] = [client(tFull), client(hybrid)];
    out.push(
      `Key exchange between proxies (Tessera server side, Node client with Tessera's groups): ${commonGroup(ms, hybrid) ?? '?'} / ${commonGroup(ms, tFull) ?? '?'} = ${formatRatio(ratio(hybrid, tFull))} server CPU (${formatNumber(med(hybrid)!.median - med(tFull)!.median)} µs per full handshake)${cx && ch ? `, client ${formatNumber(ch - cx)} µs (${formatNumber(ch)} vs ${formatNumber(cx)})` : ''}.`,
    );
  }
  const only = (server: string, resume: boolean) => find((v) => v.name.includes('handshake only') && v.server === server && v.resume === resume);
  const [nOnly, tOnly, trOnly] = [only('node', false), only('tessera', false), only('tessera', true)];
  if (nOnly && tOnly && med(nOnly) && med(tOnly)) {
    const resumedPart = trOnly && med(trOnly) ? `, resumed ${formatSpread(med(trOnly))} µs` : '';
    out.push(`Handshake only (no request, X25519): Tessera server side ${formatSpread(med(tOnly))} µs per full handshake = ${formatRatio(ratio(tOnly, nOnly))} a bare Node tls.Server (${formatSpread(med(nOnly))} µs)${resumedPart}.`);
  }
  for (const v of variants.filter((x) => x.client === 's_time')) {
    const m = med(v.name);
    const c = spread(valuesOf(ms, v.name, 'clientCpuUsPerHandshake'));
    if (m) out.push(`openssl s_time → ${v.name.replace(', openssl s_time', '')}: server ${formatSpread(m)} µs CPU per ${v.resume ? 'resumed' : 'full'} handshake with one request${c ? ` (s_time's own user CPU ${formatNumber(c.median)} µs)` : ''}.`);
  }
  const floor = floorFor(ms, variants.find((v) => v.name === nodeFull)!, commonGroup(ms, nodeFull));
  if (floor) out.push(`Measured full handshake = ${(full.median / floor).toFixed(1)}× the crypto floor of this machine (${formatNumber(floor)} µs per side from Node's own OpenSSL primitives).`);
  return out;
}
