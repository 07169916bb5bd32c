// How long a join token may stay usable: the admin API's bound, and the CLI's, so `token create --ttl` is refused as
// a usage error (exit 2, naming the flag) before the request, not by the server naming its own field.

export const MAX_JOIN_TOKEN_TTL_MS = 30 * 24 * 3_600_000;
