// What the jwt_svid.issued audit row keeps of a token's audience list: the count and the first few audiences, each
// cut. The whole list (up to 16 x 256 bytes) made every issuance a ~4.4 KB row, about one a second per pod at the
// default rate limit and never pruned (audit 16b F3); the token itself, not the trail, is what a verifier checks.

/** Audiences kept in the row, and characters kept of each. */
export const AUDIT_AUDIENCES = 4;
export const AUDIT_AUDIENCE_CHARS = 64;

export interface AudienceSummary {
  /** The first AUDIT_AUDIENCES audiences, each cut to AUDIT_AUDIENCE_CHARS characters ("…" marks a cut). */
  readonly audience: readonly string[];
  /** How many audiences the token names. */
  readonly audienceCount: number;
}

export function audienceSummary(audience: readonly string[]): AudienceSummary {
  const cut = (a: string) => (a.length > AUDIT_AUDIENCE_CHARS ? `${a.slice(0, AUDIT_AUDIENCE_CHARS - 1)}…` : a);
  return { audience: audience.slice(0, AUDIT_AUDIENCES).map(cut), audienceCount: audience.length };
}
