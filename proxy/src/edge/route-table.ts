// Edge routing, pure: a request's host and path pick one route. Hosts match exactly, then by the longest
// "*.suffix" wildcard, then "*"; within the host group the longest path prefix wins (on segment boundaries).

export interface EdgeRoute<U = unknown> {
  /** "api.example.com", "*.example.com" (any subdomain depth) or "*". */
  readonly host: string;
  readonly pathPrefix: string;
  readonly upstream: U;
}

function hostRank(pattern: string, host: string): number {
  if (pattern === host) return 3_000_000;
  if (pattern === '*') return 1;
  if (pattern.startsWith('*.') && host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1) return 1_000_000 + pattern.length;
  return 0;
}

function pathMatches(prefix: string, path: string): boolean {
  if (prefix === '/' || prefix === '') return true;
  if (!path.startsWith(prefix)) return false;
  // "/api" matches "/api", "/api/x" and "/api?q", not "/apix".
  return prefix.endsWith('/') || path.length === prefix.length || path[prefix.length] === '/' || path[prefix.length] === '?';
}

/** Lower-cases and drops the port and a trailing dot: "API.Example.com.:443" → "api.example.com". */
export function normalizeHost(raw: string | undefined): string {
  if (!raw) return '';
  let h = raw.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.lastIndexOf(':');
  if (colon >= 0) h = h.slice(0, colon);
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

export function selectRoute<U>(routes: readonly EdgeRoute<U>[], rawHost: string | undefined, path: string): EdgeRoute<U> | undefined {
  const host = normalizeHost(rawHost);
  let best: EdgeRoute<U> | undefined;
  let bestScore = 0;
  for (const r of routes) {
    const h = hostRank(r.host, host);
    if (h === 0 || !pathMatches(r.pathPrefix, path)) continue;
    const score = h * 10_000 + Math.min(r.pathPrefix.length, 9_999);
    if (score > bestScore) {
      best = r;
      bestScore = score;
    }
  }
  return best;
}
