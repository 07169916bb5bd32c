// An app connection that reads its input to the end and then "commits" it, as a read-to-EOF server does: what the
// tunnel-cut tests watch, since a proxy's cut must reach such an app as a reset, never as an end it would commit.
import type { Socket } from 'node:net';

/**
 * Reads `s` to its end of input; records, under the tag `tagOf` reads from its first bytes, the bytes received
 * (`bytes`) and how the input ended (`ends`: 'end' — it answers `committed N` — or 'reset').
 */
export function sinkUpload(s: Socket, tagOf: (d: Buffer) => string, ends: Map<string, string>, bytes: Map<string, number>): void {
  let tag = '';
  let n = 0;
  s.on('data', (d: Buffer) => {
    tag ||= tagOf(d);
    n += d.length;
    bytes.set(tag, n);
  });
  s.on('end', () => {
    ends.set(tag, 'end');
    s.end(`committed ${n}\n`);
  });
  s.on('error', (e: NodeJS.ErrnoException) => ends.set(tag, e.code === 'ECONNRESET' ? 'reset' : `error ${e.code}`));
}
