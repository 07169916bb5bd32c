// fast-check generators of hostile HTTP/1.1 messages: mostly well-formed requests and responses with the framing
// tricks smuggling lives on (duplicate or odd Content-Length, CL+TE, TE lists, obs-fold, bare CR/LF/NUL, chunk
// sizes with extensions, leading zeros or overflow, trailers), pipelined, then optionally one byte mutated.
import fc from 'fast-check';

/** `arb` in one case out of `outOf`, otherwise undefined. */
const sometimes = <T>(arb: fc.Arbitrary<T>, outOf: number): fc.Arbitrary<T | undefined> =>
  fc.oneof({ weight: 1, arbitrary: arb }, { weight: outOf - 1, arbitrary: fc.constant(undefined) });

/** Message generators; `hostile` lets each choice be odd in about one case out of 30, otherwise all are sane. */
function messages(hostile: boolean): { request: fc.Arbitrary<string>; response: fc.Arbitrary<string> } {
  const rare = <T>(common: fc.Arbitrary<T>, odd: fc.Arbitrary<T>, oddWeight = 1): fc.Arbitrary<T> =>
    hostile ? fc.oneof({ weight: 30, arbitrary: common }, { weight: oddWeight, arbitrary: odd }) : common;


  const eol = rare(fc.constant('\r\n'), fc.constantFrom('\n', '\r', '\r\r\n', ' \r\n', '\r\n\r'));

  const method = rare(
    fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'),
    fc.constantFrom('get', 'TRACE', 'CONNECT', 'G\x00ET', 'GET ', ' GET', 'PO ST', 'FOO', ''),
  );

  const segment = fc.constantFrom('a', 'b', '..', '.', '%2e', '%2F', '', 'x;y', '%00', 'c%20d');
  const target = rare(
    fc.tuple(fc.array(segment, { maxLength: 4 }), sometimes(fc.constantFrom('q=1', 'a=b&c', ''), 2)).map(
      ([segs, q]) => `/${segs.join('/')}${q === undefined ? '' : `?${q}`}`,
    ),
    fc.constantFrom('*', 'http://h/p', 'h:443', '/a b', '/a\x00', '/a\tb', '/a#b', '/\x7f', '/\x80', '', '/a\rb', '/a\nb'),
  );

  const version = rare(fc.constant('HTTP/1.1'), fc.constantFrom('HTTP/1.0', 'HTTP/1.2', 'HTTP/2.0', 'http/1.1', 'HTTP/1.1 ', 'HTTP/01.1', 'HTTP/1.10', 'HTTP/1'), 3);

  const clValue = rare(fc.constantFrom('0', '3', '5'), fc.constantFrom('0', '1', '3', '5', '10', '03', '+3', '-1', '3 ', ' 3', '3,3', '3, 3', '3, 4', '0x3', '3.0', '', '99999999999999999999', '1e1', '3\x00', '\t3'), 15);
  const teValue = rare(fc.constant('chunked'), fc.constantFrom(
    'chunked', 'Chunked', 'CHUNKED', 'chunked, chunked', 'gzip, chunked', 'chunked, gzip', 'identity', 'identity, chunked',
    ' chunked', 'chunked ', 'chunked\x00', 'chunk', '"chunked"', 'chunked;a=b', ',chunked', 'chunked,', '\x0bchunked', 'chunked\x0b', '', 'chunked\t', '\tchunked', 'chunked \t',
  ), 15);
  const anyValue = fc.string({ unit: fc.constantFrom('a', 'b', ' ', '\t', ',', ';', '=', '"', '\x00', '\r', '\n', '\x0b', '\x7f', '\x80', '\xff', ':'), maxLength: 8 });

  const fieldName = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom('X-A', 'Content-Type', 'Accept', 'Trailer') },
    { weight: 4, arbitrary: fc.constantFrom('Host', 'Content-Length', 'Transfer-Encoding', 'Connection', 'content-length') },
    {
      weight: hostile ? 2 : 0,
      arbitrary: fc.constantFrom('Content-Length ', 'Transfer-Encoding ', 'Transfer-Encoding\t', 'Transfer_Encoding', 'Content-Length\x00', ' Host', 'X\x7fA', 'X A', '', 'X-A\r'),
    },
  );

  function valueFor(name: string): fc.Arbitrary<string> {
    const n = name.trim().toLowerCase();
    if (n === 'content-length') return rare(clValue, anyValue);
    if (n === 'transfer-encoding') return rare(teValue, anyValue);
    if (n === 'connection') return rare(fc.constantFrom('close', 'keep-alive', 'Keep-Alive, close', 'x-a'), anyValue);
    if (n === 'host') return rare(fc.constantFrom('a', 'a:1', ''), anyValue);
    return rare(fc.constantFrom('v', 'a b', ''), anyValue);
  }

  const separator = rare(fc.constantFrom(': ', ':'), fc.constantFrom(':\t', ': \t', ' :', '::', ':  '));

  /** One field line, sometimes followed by an obs-fold continuation line. */
  const field = fieldName.chain((name) =>
    fc.tuple(fc.constant(name), separator, valueFor(name), eol, sometimes(fc.constantFrom(' x', '\tchunked', ' 5'), 30)).map(
      ([n, sep, v, e, fold]) => `${n}${sep}${v}${e}${fold === undefined ? '' : `${fold}${e}`}`,
    ),
  );

  const data = fc.string({ unit: fc.constantFrom('a', 'b', '0', '\r', '\n', ';', ' '), maxLength: 10 });

  /** One chunk: its size line (possibly wrong, padded, overflowing or extended) and data. */
  const chunk = fc
    .record({
      data: data.filter((d) => d.length > 0),
      size: rare(fc.constantFrom('lower', 'upper'), fc.constantFrom('lead0', 'plus1', 'minus1', 'overflow', 'space', 'neg')),
      ext: rare(fc.constant(''), fc.constantFrom(';a=b', ' ;a', ';a="b"', '\t;x', ';', ';a=b;c', ' ', ';\x00', ';a\rb')),
      eol1: eol,
      eol2: eol,
    })
    .map(({ data, size, ext, eol1, eol2 }) => {
      const n = data.length;
      const hex = {
        lower: n.toString(16),
        upper: n.toString(16).toUpperCase(),
        lead0: `000${n.toString(16)}`,
        plus1: (n + 1).toString(16),
        minus1: (n - 1).toString(16),
        overflow: `1${'0'.repeat(16)}${n.toString(16)}`,
        space: ` ${n.toString(16)}`,
        neg: `-${n.toString(16)}`,
      }[size];
      return `${hex}${ext}${eol1}${data}${eol2}`;
    });

  const trailer = rare(fc.constantFrom('X-T: 1', 'X-U:2 '), fc.constantFrom('Content-Length: 5', 'Transfer-Encoding: chunked', 'bad', ' folded', 'X-T:\x00', ': v', 'X-T: a\rb'), 8);

  const chunkedBody = fc
    .record({
      chunks: fc.array(chunk, { maxLength: 3 }),
      last: rare(fc.constant('0'), fc.constantFrom('00', '000', '0;x', '0 ', '', 'x')),
      trailers: fc.array(fc.tuple(trailer, eol), { maxLength: 2 }),
      end: eol,
      lastEol: eol,
    })
    .map(({ chunks, last, trailers, end, lastEol }) => `${chunks.join('')}${last}${lastEol}${trailers.map(([t, e]) => `${t}${e}`).join('')}${end}`);

  /** Framing headers added to match the body (the generated field lines may add conflicting ones). */
  const framedBody = fc.oneof(
    fc.constant({ framing: '', body: '' }),
    data.map((b) => ({ framing: `Content-Length: ${b.length}\r\n`, body: b })),
    chunkedBody.map((b) => ({ framing: 'Transfer-Encoding: chunked\r\n', body: b })),
    data.map((b) => ({ framing: '', body: b })),
  );

  /** One request: request line, Host (usually), field lines, framing, body. */
  const request = fc
    .record({
      method,
      target,
      version,
      lineEol: eol,
      host: rare(fc.constant('Host: h\r\n'), fc.constantFrom(undefined, 'Host: h\r\nHost: i\r\n')),
      fields: fc.array(field, { maxLength: 4 }),
      framed: framedBody,
      endEol: eol,
    })
    .map(({ method, target, version, lineEol, host, fields, framed, endEol }) => `${method} ${target} ${version}${lineEol}${host ?? ''}${fields.join('')}${framed.framing}${endEol}${framed.body}`);

  const status = rare(fc.constantFrom('200 OK', '204 No Content', '304 Not Modified', '404 Not Found', '500 Oops'), fc.constantFrom('100 Continue', '103 Hints', '200', '2000 X', '20 X', '200\tOK', 'abc X', '199 X', '099 X'));

  /** One response, sometimes after an interim 1xx. */
  const response = fc
    .record({
      interim: sometimes(fc.constantFrom('HTTP/1.1 100 Continue\r\n\r\n', 'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n'), 8),
      version: rare(fc.constant('HTTP/1.1'), fc.constantFrom('HTTP/1.0', 'HTTP/1.2', 'http/1.1', 'HTTP/2')),
      status,
      lineEol: eol,
      fields: fc.array(field, { maxLength: 4 }),
      framed: framedBody,
      endEol: eol,
      extra: sometimes(fc.constantFrom('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 'xyz'), 8),
    })
    .map(({ interim, version, status, lineEol, fields, framed, endEol, extra }) => `${interim ?? ''}${version} ${status}${lineEol}${fields.join('')}${framed.framing}${endEol}${framed.body}${extra ?? ''}`);

  return { request, response };
}

/** A byte inserted, replaced or deleted at a position taken modulo the length. */
const mutation = fc.record({
  at: fc.nat(),
  kind: fc.constantFrom('insert', 'replace', 'delete'),
  byte: fc.constantFrom(0, 9, 10, 13, 32, 0x0b, 0x3a, 0x3b, 0x30, 0x61, 0x7f, 0x80, 0xff),
});

function mutate(s: string, m: { at: number; kind: string; byte: number } | undefined): Buffer {
  const b = Buffer.from(s, 'latin1');
  if (!m || b.length === 0) return b;
  const at = m.at % b.length;
  const byte = Buffer.of(m.byte);
  if (m.kind === 'insert') return Buffer.concat([b.subarray(0, at), byte, b.subarray(at)]);
  if (m.kind === 'delete') return Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
  return Buffer.concat([b.subarray(0, at), byte, b.subarray(at + 1)]);
}

const clean = messages(false);
const hostile = messages(true);
const either = <T>(a: fc.Arbitrary<T>, b: fc.Arbitrary<T>) => fc.oneof({ weight: 1, arbitrary: a }, { weight: 2, arbitrary: b });

/** One request: a sane one or a hostile one. */
export const request = either(clean.request, hostile.request);

/** One to three pipelined requests, sometimes a leading empty line or trailing bytes, sometimes one byte mutated. */
export const requestStream: fc.Arbitrary<Buffer> = fc
  .record({
    lead: sometimes(fc.constantFrom('\r\n', '\n', '\r\n\r\n'), 10),
    requests: fc.array(request, { minLength: 1, maxLength: 3 }),
    tail: sometimes(fc.constantFrom('G', 'GET / HTTP/1.1\r\n', '\r\n', '0\r\n\r\n'), 6),
    mutation: sometimes(mutation, 4),
  })
  .map(({ lead, requests, tail, mutation }) => mutate(`${lead ?? ''}${requests.join('')}${tail ?? ''}`, mutation));

/** One response (sane or hostile), sometimes one byte mutated. */
export const responseBytes: fc.Arbitrary<Buffer> = fc
  .record({ text: either(clean.response, hostile.response), mutation: sometimes(mutation, 4) })
  .map(({ text, mutation }) => mutate(text, mutation));
