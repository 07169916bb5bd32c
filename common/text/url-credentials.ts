// A URL's userinfo (user:password@) is a secret where configs show it (/config on both admin listeners): an OTLP
// or bundle endpoint URL may carry one.

const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)[^/?#@]*@/i;

/** `text` with the userinfo of a URL at its start replaced; any other string unchanged. */
export function withoutUrlCredentials(text: string): string {
  return text.replace(USERINFO, '$1<redacted>@');
}
