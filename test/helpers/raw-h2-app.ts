// A raw h2c app for tests: frames node:http2 will not send (a :status outside 200-599, RST_STREAM(NO_ERROR) in the
// middle of a body). Answers the preface and SETTINGS, then hands each request's stream id to `onRequest`.
import * as net from 'node:net';

export function h2Frame(type: number, flags: number, id: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(9 + payload.length);
  b.writeUIntBE(payload.length, 0, 3);
  b[3] = type;
  b[4] = flags;
  b.writeUInt32BE(id, 5);
  payload.copy(b, 9);
  return b;
}

/** An HPACK header block of literal fields with new names, not indexed (names and values under 127 bytes). */
export function hpackBlock(fields: readonly (readonly [string, string])[]): Buffer {
  return Buffer.concat(fields.flatMap(([name, value]) => [Buffer.from([0, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]));
}

/**
 * A server speaking h2c by hand: answers the preface with its SETTINGS and acknowledges the client's, and hands
 * every frame of a connection (type, flags, stream id) to the handler `perConnection` made for that connection.
 */
export function rawH2Server(perConnection: (socket: net.Socket) => (type: number, flags: number, id: number) => void): net.Server {
  return net.createServer((s) => {
    s.on('error', () => undefined);
    const onFrame = perConnection(s);
    let buf = Buffer.alloc(0);
    let preface = false;
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!preface) {
        if (buf.length < 24) return;
        buf = buf.subarray(24);
        preface = true;
        s.write(h2Frame(4, 0, 0));
      }
      while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
        const len = buf.readUIntBE(0, 3);
        const [type, flags] = [buf[3]!, buf[4]!];
        const id = buf.readUInt32BE(5) & 0x7fffffff;
        buf = buf.subarray(9 + len);
        if (type === 4 && (flags & 1) === 0) s.write(h2Frame(4, 1, 0));
        onFrame(type, flags, id);
      }
    });
  });
}

/** A raw h2c server; `onRequest(socket, streamId)` for every HEADERS frame a client sends. */
export function rawH2App(onRequest: (socket: net.Socket, streamId: number) => void): net.Server {
  return rawH2Server((s) => (type, _flags, id) => {
    if (type === 1) onRequest(s, id);
  });
}
