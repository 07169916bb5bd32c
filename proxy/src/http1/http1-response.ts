// The upstream's answer to one HTTP/1.1 exchange on its way to the client: interim heads passed on, a 101 told
// apart, the final head checked, rewritten and framed, the body relayed. Apart from the session, which only acts
// on the step returned here; the response's own state stays in the Http1Exchange.
import { type BodyFramer, framerFor, LengthFramer } from './body-framer.js';
import { downstreamResponseHead, interimHeadWithout, responseNeedsRewrite, withoutBodyFraming } from './head-rewrite.js';
import type { Http1Downstream } from './http1-downstream.js';
import type { Http1Exchange } from './http1-exchange.js';
import { type BodyFraming, type HeadLimits, type HttpHead, MAX_INTERIM_BYTES, MAX_INTERIM_HEADS, parseHead, responseFraming, wantsKeepAlive } from './http1-head.js';
import { switchOffered } from './upgrade-offer.js';

/**
 * An answer whose client has left is still read (and dropped) when at most this much of it is to come: cheaper
 * than a new upstream (mTLS) connection. A stream or a larger body is cut with its connection instead.
 */
export const VOID_LIMIT = 256 * 1024;

/**
 * What the session does after upstream bytes were read: `more`, wait for more of the head or body; `done`, the
 * response is complete; `bad`, not valid from the app (502 bad_upstream_response, or a cut once started);
 * `switch`, the app's 101 to this exchange's upgrade, held in ex.resBuf with what followed it; `give_up`, the
 * client is gone and the answer is too large to read into the void; `retry`, a 5xx from a balanced service's
 * endpoint that goes to another one (ex.next), nothing of it sent to the client.
 */
export type ResponseStep = 'more' | 'done' | 'bad' | 'switch' | 'give_up' | 'retry';

/** Upstream bytes before the final response head has been read. */
export function readResponseHead(ex: Http1Exchange, chunk: Buffer, client: Http1Downstream, limits: HeadLimits): ResponseStep {
  let raw: Buffer = ex.resBuf ? Buffer.concat([ex.resBuf, chunk]) : chunk;
  ex.resBuf = raw;
  for (;;) {
    const r = parseHead(raw, 0, 'response', limits);
    if ('incomplete' in r) return 'more';
    if ('rejected' in r) return 'bad';
    const head = r.head;
    const rest: Buffer | null = raw.length > head.length ? raw.subarray(head.length) : null;
    // Only the answer to an upgrade this exchange asked for, to what it offered, once the request went out whole.
    if (head.status === 101) {
      if (ex.upgrade === null || !ex.reqDone || !switchOffered(head, ex.upgrade)) return 'bad';
      // What the tunnel sends first: the 101 without what only a proxy says, then what followed it.
      const clean = ex.dropResponse && interimHeadWithout(raw, head, ex.dropResponse);
      if (clean) ex.resBuf = rest ? Buffer.concat([clean, rest]) : clean;
      ex.switchHeadBytes = clean ? clean.length : head.length;
      return 'switch';
    }
    if (head.status! < 200) {
      // Interim responses (100 Continue, 103 Early Hints) pass through, except to an HTTP/1.0 client, which
      // cannot read them (RFC 9110 section 15.2); the final one follows. As many as on HTTP/2, no more.
      ex.interimBytes += head.length;
      if (++ex.interimHeads > MAX_INTERIM_HEADS || ex.interimBytes > MAX_INTERIM_BYTES) return 'bad';
      if (head.status === 100) ex.continued();
      if (ex.head.minor === 1) sendHead(client, ex, (ex.dropResponse && interimHeadWithout(raw, head, ex.dropResponse)) || raw.subarray(0, head.length));
      ex.resBuf = rest;
      if (!rest) return 'more';
      raw = rest;
      continue;
    }
    return finalHead(ex, raw, head, rest, client, limits);
  }
}

function finalHead(ex: Http1Exchange, raw: Buffer, head: HttpHead, rest: Buffer | null, client: Http1Downstream, limits: HeadLimits): ResponseStep {
  if (ex.route) {
    ex.route.responded();
    if (head.status! >= 500 && ex.tryRetry('status_5xx')) return 'retry';
  }
  const framing = responseFraming(head, ex.head.method!);
  if (framing === 'bad_request') return 'bad';
  if (client.gone && !fitsTheVoid(framing)) return 'give_up';
  ex.resBuf = null;
  ex.resClosing = framing.kind === 'close' || wantsKeepAlive(head) === false;
  if (framing.kind === 'close') client.keepAlive = false;
  const closing = !client.keepAlive;
  // An HTTP/1.0 client keeps the connection only when told so (RFC 9112 section 9.3).
  const http10 = ex.head.minor === 0;
  const added = client.added;
  // Forwarded byte for byte (the common case): the head is the start of `raw`, and the body's first bytes follow it there.
  const drop = head.status === 204 && (head.names.includes('transfer-encoding') || head.names.includes('content-length')) ? withoutBodyFraming(ex.dropResponse) : ex.dropResponse;
  const rewritten = responseNeedsRewrite(head, closing, http10, added, drop) ? downstreamResponseHead(raw.subarray(0, head.length), head, closing, http10, added, drop) : null;
  // From an app, the fields only the proxy says are dropped from its trailers too.
  ex.resFramer = framerFor(framing, ex.dropResponse ?? 'keep', limits);
  if (!ex.resFramer) {
    client.started(ex, head.status!);
    sendHead(client, ex, rewritten ?? raw.subarray(0, head.length));
    if (rest) ex.resClosing = true; // bytes after a bodiless response: do not trust this connection again
    return 'done';
  }
  if (!rest) {
    client.started(ex, head.status!);
    sendHead(client, ex, rewritten ?? raw); // nothing follows the head in raw
    return 'more';
  }
  // Head and (part of) the body in one write: one TLS record, one syscall; without a rewrite, no copy either.
  const r2 = ex.resFramer.feed(rest, 0);
  if (r2.error) return 'bad';
  client.started(ex, head.status!);
  const sent = r2.kept ?? r2.consumed;
  const body = sent === rest.length ? rest : rest.subarray(0, sent);
  const content = r2.data ?? sent;
  if (rewritten === null) client.send(ex, body === rest ? raw : raw.subarray(0, head.length + sent), content);
  else client.send(ex, body.length === 0 ? rewritten : Buffer.concat([rewritten, body]), content);
  if (!r2.done) return 'more';
  if (r2.tail) client.send(ex, r2.tail, 0); // the trailer section: not content
  if (r2.consumed < rest.length) ex.resClosing = true;
  return 'done';
}

/** A response head to the client: sent, not counted (bytesOut counts content, as HTTP/2 counts DATA). */
function sendHead(client: Http1Downstream, ex: Http1Exchange, head: Buffer): void {
  client.send(ex, head, 0);
}

/** Upstream bytes of the response body (ex.resFramer is set). */
export function relayResponseBody(ex: Http1Exchange, chunk: Buffer, client: Http1Downstream): ResponseStep {
  const r = ex.resFramer!.feed(chunk, 0);
  if (r.error) return 'bad';
  const sent = r.kept ?? r.consumed;
  if (sent > 0) client.send(ex, sent === chunk.length ? chunk : chunk.subarray(0, sent), r.data ?? sent);
  if (!r.done) return 'more';
  if (r.tail) client.send(ex, r.tail, 0); // the trailer section: not content
  if (r.consumed < chunk.length) ex.resClosing = true;
  return 'done';
}

/** The client left mid-exchange: whether what is left of the answer (still unknown before its head) is worth reading. */
export function restFitsTheVoid(ex: Http1Exchange): boolean {
  return ex.resFramer === null || smallRest(ex.resFramer);
}

function fitsTheVoid(f: BodyFraming): boolean {
  return f.kind === 'none' || (f.kind === 'length' && f.length <= VOID_LIMIT);
}

function smallRest(f: BodyFramer): boolean {
  return f instanceof LengthFramer && f.remaining <= VOID_LIMIT;
}
