// llhttp (Node's own HTTP/1.1 parser) as a test oracle, reached only through public node:http: a loopback server
// reports the requests it parsed from raw bytes, a node:http client reports the response it parsed from raw bytes.
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';

export interface ParsedMessage {
  /** Request method, or the response status as a string. */
  readonly start: string;
  /** Request target; '' for a response. */
  readonly target: string;
  /** Header names lower-cased, values as llhttp delivered them, in order. */
  readonly headers: readonly (readonly [string, string])[];
  body: Buffer;
  /** The message ended (llhttp's on_message_complete), not cut by an error or EOF. */
  complete: boolean;
}

export interface ParsedStream {
  readonly messages: ParsedMessage[];
  /** llhttp's error code (HPE_...) if it refused the stream; 'tunnel' after CONNECT/Upgrade. */
  error: string | null;
}

function pairs(raw: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!.toLowerCase(), raw[i + 1]!]);
  return out;
}

function collect(msg: http.IncomingMessage, into: ParsedMessage, onEnd?: () => void): void {
  const chunks: Buffer[] = [];
  msg.on('data', (c: Buffer) => chunks.push(c));
  msg.on('end', () => {
    into.body = Buffer.concat(chunks);
    into.complete = true;
    onEnd?.();
  });
  msg.on('error', () => {
    into.body = Buffer.concat(chunks);
  });
  msg.on('aborted', () => {
    into.body = Buffer.concat(chunks);
  });
}

/** A node:http server on 127.0.0.1; `parse(bytes)` sends the bytes on a fresh connection and reports what it parsed. */
export class RequestOracle {
  readonly #server: http.Server;
  readonly #views = new Map<number, ParsedStream>();
  readonly #closed = new Map<number, () => void>();
  /** Every request parsed, on any connection, in parse order (see takeAll). */
  readonly #all: ParsedMessage[] = [];
  #open = 0;

  private constructor(server: http.Server) {
    this.#server = server;
  }

  static async start(): Promise<RequestOracle> {
    // Host is a semantic check above the parser: off, so the oracle is llhttp alone.
    const server = http.createServer({ requireHostHeader: false, maxHeaderSize: 16_384 });
    const o = new RequestOracle(server);
    server.on('connection', (s: net.Socket) => {
      const port = s.remotePort!;
      o.#views.set(port, { messages: [], error: null });
      o.#open++;
      s.on('close', () => {
        o.#open--;
        setImmediate(() => o.#closed.get(port)?.());
      });
    });
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const view = o.#views.get(req.socket.remotePort!)!;
      const m: ParsedMessage = { start: req.method!, target: req.url!, headers: pairs(req.rawHeaders), body: Buffer.alloc(0), complete: false };
      view.messages.push(m);
      o.#all.push(m);
      collect(req, m, () => res.end());
    };
    server.on('request', onRequest);
    server.on('checkExpectation', onRequest);
    server.on('clientError', (err: NodeJS.ErrnoException, s: net.Socket) => {
      const view = o.#views.get(s.remotePort!);
      if (view && view.error === null) view.error = err.code ?? err.message;
      s.destroy();
    });
    const tunnel = (req: http.IncomingMessage, s: net.Socket) => {
      const view = o.#views.get(s.remotePort!)!;
      view.messages.push({ start: req.method!, target: req.url!, headers: pairs(req.rawHeaders), body: Buffer.alloc(0), complete: true });
      view.error = 'tunnel';
      s.destroy();
    };
    server.on('connect', tunnel);
    server.on('upgrade', tunnel);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return o;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** What llhttp made of `input`, sent whole and followed by EOF. */
  async parse(input: Buffer, port = this.port): Promise<ParsedStream> {
    const c = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    c.on('error', () => {});
    c.resume();
    await new Promise<void>((r) => c.once('connect', () => r()));
    const local = c.localPort!;
    const closed = new Promise<void>((r) => this.#closed.set(local, r));
    c.end(input);
    const timedOut = await Promise.race([closed.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 5_000).unref())]);
    c.destroy();
    this.#closed.delete(local);
    const view = this.#views.get(local) ?? { messages: [], error: 'no connection' };
    this.#views.delete(local);
    if (timedOut) throw new Error('the oracle server never closed the connection');
    return view;
  }

  /** Connections open to the app now (its parser has read all a closed one sent). */
  get openConnections(): number {
    return this.#open;
  }

  /** The requests parsed since the last call, on every connection (e.g. a proxy's pooled ones), in parse order. */
  takeAll(): ParsedMessage[] {
    return this.#all.splice(0);
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((r) => this.#server.close(() => r()));
  }
}

/** What a node:http client parsed from one response, for a request with `method`. */
export function parseResponse(port: number, method: string): Promise<ParsedStream> {
  return new Promise((resolve) => {
    const view: ParsedStream = { messages: [], error: null };
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      setImmediate(() => resolve(view));
    };
    const agent = new http.Agent({ keepAlive: false });
    const req = http.request({ host: '127.0.0.1', port, method, path: '/', agent, headers: { connection: 'close' } }, (res) => {
      const m: ParsedMessage = { start: String(res.statusCode), target: '', headers: pairs(res.rawHeaders), body: Buffer.alloc(0), complete: false };
      view.messages.push(m);
      collect(res, m, done);
      res.on('error', (e: NodeJS.ErrnoException) => {
        view.error ??= e.code ?? e.message;
        done();
      });
      res.on('close', done);
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      view.error ??= e.code ?? e.message;
      done();
    });
    req.end();
  });
}

/** A loopback server that answers each request with the bytes of `next`, then closes: raw responses for parseResponse. */
export class RawResponder {
  readonly #server: net.Server;
  next: Buffer = Buffer.alloc(0);

  private constructor(server: net.Server) {
    this.#server = server;
  }

  static async start(): Promise<RawResponder> {
    const server = net.createServer({ allowHalfOpen: true });
    const r = new RawResponder(server);
    server.on('connection', (s) => {
      s.on('error', () => {});
      let seen = '';
      const onData = (c: Buffer) => {
        seen += c.toString('latin1');
        if (!seen.includes('\r\n\r\n')) return;
        s.off('data', onData);
        s.end(r.next);
      };
      s.on('data', onData);
    });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    return r;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    return new Promise((res) => this.#server.close(() => res()));
  }
}
