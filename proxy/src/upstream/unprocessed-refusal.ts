// An attempt the upstream refused before it processed anything (a multiplexed stream reset REFUSED, as HTTP/2's
// REFUSED_STREAM, RFC 9113 §8.7): safe to send again whatever the method. The transport marks its error; the HTTP
// layer asks this, not the transport's own error classes and codes.

/** Whether `err` says the upstream processed nothing of the attempt. */
export function refusedUnprocessed(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { readonly unprocessed?: unknown }).unprocessed === true;
}
