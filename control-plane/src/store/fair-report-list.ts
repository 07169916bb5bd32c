// The one listing query of both report stores (SQLite and PostgreSQL run the same SQL, so they list alike): fair
// per SPIFFE ID and bounded in rows and in bytes read. A cut by newest alone let ~16 IDs' 64 instances each push
// every real proxy out of the fleet view (audit 16b F2); a cut in rows alone still let each build read and parse up
// to 1,000 reports of ~64 KB (audit 16b F1).

/** Rows a listing returns unless the caller asks for fewer (both stores). */
export const DEFAULT_LIST_LIMIT = 1_000;

/**
 * The listing SQL. `columns` (of proxy_reports) are selected; `size` is a row's stored length in bytes, an
 * octet_length() of its text columns, which neither database reads the text for; `since`, `maxBytes` and `limit`
 * are the placeholders. Rows are ranked within their SPIFFE ID (newest first) and taken rank by rank; within a rank
 * the smaller reports come first (a proxy's ordinary report is not crowded out by other IDs' largest), then the
 * newest. A row is kept while the bytes of the rows before it stay under `maxBytes`. The ranking and the budget see
 * only keys and sizes: the text of the chosen rows alone is read.
 */
export function fairListSql(columns: readonly string[], size: string, since: string, maxBytes: string, limit: string): string {
  const order = 'rank, size, received_at_ms DESC, spiffe_id, instance';
  // Sizes are taken in a step of their own: computed within the ranking, SQLite carried each row's text through
  // the window's sort (223 ms for 513 large rows, against 45 ms).
  return `WITH sized AS (SELECT spiffe_id, instance, received_at_ms, ${size} AS size FROM proxy_reports WHERE received_at_ms >= ${since}),
    ranked AS (SELECT *, ROW_NUMBER() OVER (PARTITION BY spiffe_id ORDER BY received_at_ms DESC, instance) AS rank FROM sized),
    summed AS (SELECT *, SUM(size) OVER (ORDER BY ${order} ROWS UNBOUNDED PRECEDING) AS upto FROM ranked),
    chosen AS (SELECT * FROM summed WHERE upto - size < ${maxBytes} ORDER BY ${order} LIMIT ${limit})
    SELECT ${columns.map((c) => `p.${c}`).join(', ')} FROM chosen JOIN proxy_reports p ON p.spiffe_id = chosen.spiffe_id AND p.instance = chosen.instance
    ORDER BY chosen.rank, chosen.size, chosen.received_at_ms DESC, chosen.spiffe_id, chosen.instance`;
}
