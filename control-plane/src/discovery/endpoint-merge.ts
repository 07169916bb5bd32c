// How the service registry merges what several places say about one address of a service: which report is served.
// Which endpoint wins when two report the same address for a service: a live self-registration (the endpoint says
// so itself now), then the sources, then a self-registration that is only remembered. But where a source (the
// operator's word) names another SPIFFE ID for the address than a self-registration does, the source wins: a
// workload must not put its ID on an endpoint the operator knows as another's (callers would refuse the real one).
export const RANK = { live: 0, kubernetes: 1, static: 2, lingering: 3 } as const;

export interface Offer<E extends { readonly spiffeId: string }> {
  readonly rank: number;
  readonly seq: number;
  readonly fromSource: boolean;
  readonly e: E;
}

/** Whether `next` takes the address from `cur` (the rule above). */
export function takesOver<E extends { readonly spiffeId: string }>(cur: Offer<E>, next: Offer<E>): boolean {
  if (cur.fromSource !== next.fromSource && cur.e.spiffeId !== next.e.spiffeId) return next.fromSource;
  return next.rank < cur.rank || (next.rank === cur.rank && next.seq < cur.seq);
}
