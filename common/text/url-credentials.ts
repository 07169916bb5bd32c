// A URL's userinfo (user:password@) and its query values (?token=...) are secrets where configs show them (/config
// on both admin listeners, log lines): an OTLP or bundle endpoint URL may carry either.

/** Scheme, then userinfo up to the last '@' before the path (as WHATWG URL parsing reads it: a password may hold '@'). */
const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i;
const QUERY_VALUE = /([?&][^=&#]*=)[^&#]*/g;

/** `text` with the userinfo and query values of a URL at its start replaced; any other string unchanged. */
export function withoutUrlCredentials(text: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) return text;
  const q = text.indexOf('?');
  const head = (q === -1 ? text : text.slice(0, q)).replace(USERINFO, '$1<redacted>@');
  return q === -1 ? head : head + text.slice(q).replace(QUERY_VALUE, '$1<redacted>');
}
