// Whether two listen addresses would take the same socket: config validation catches a clash at its keys and lines
// instead of leaving it to bind (EADDRINUSE, naming neither key). Port 0 never clashes (any free port).
interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** The addresses a host may stand for, as far as a bind can tell without DNS ("localhost" is both loopbacks). */
function spellings(host: string): readonly string[] {
  const h = host.toLowerCase();
  if (h === 'localhost') return ['127.0.0.1', '::1'];
  return [h === '0:0:0:0:0:0:0:0' ? '::' : h === '0:0:0:0:0:0:0:1' ? '::1' : h];
}

/**
 * True when binding both would fail: same port and the same host, or a wildcard covering the other (`::` covers every
 * address, Node binding it dual-stack; `0.0.0.0` every IPv4 one and any name, which may resolve to one). Two
 * different specific addresses (127.0.0.1 and 10.0.0.5) do not clash.
 */
export function addressesOverlap(a: ListenAddress, b: ListenAddress): boolean {
  if (a.port === 0 || a.port !== b.port) return false;
  const as = spellings(a.host);
  const bs = spellings(b.host);
  if (as.includes('::') || bs.includes('::')) return true;
  const v4Wildcard = (hs: readonly string[], others: readonly string[]) => hs.includes('0.0.0.0') && others.some((o) => !o.includes(':'));
  if (v4Wildcard(as, bs) || v4Wildcard(bs, as)) return true;
  return as.some((h) => bs.includes(h));
}
