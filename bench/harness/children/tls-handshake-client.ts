// Handshake-scenario client (own process, so its CPU is measured alone): N loops of connect → mTLS → one request
// (or none: handshake only).
// argv[2] = JSON options; then reads `{"runMs": N}` lines on stdin and answers each with one JSON result line.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { type SecureContext, type TLSSocket, connect, createSecureContext } from 'node:tls';

interface ClientArgs {
  readonly port: number;
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
  readonly concurrency: number;
  /** Offer the last TLS 1.3 ticket of this loop (session resumption). */
  readonly resume: boolean;
  /** Pass key/cert/ca to every tls.connect (a new SecureContext per connection) instead of one cached context. */
  readonly perConnectionContext: boolean;
  readonly servername: string;
  /** The server's SPIFFE ID (URI SAN) the client insists on, as a sidecar would. */
  readonly expectedServerId: string;
  /** Key-exchange groups, preferred first (a key share for the first only); absent = Node's default (two shares). */
  readonly ecdhCurve?: string;
  /** false: handshake only — close right after it instead of one request (no ticket arrives: full handshakes only). */
  readonly request?: boolean;
}

const args = JSON.parse(process.argv[2] ?? '{}') as ClientArgs;
const material = { cert: readFileSync(args.certFile), key: readFileSync(args.keyFile), ca: readFileSync(args.caFile), ...(args.ecdhCurve ? { ecdhCurve: args.ecdhCurve } : {}) };
const cached: SecureContext = createSecureContext(material);
const REQUEST = Buffer.from('GET / HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n');

interface Tally {
  handshakes: number;
  resumed: number;
  errors: number;
  groups: Record<string, number>;
  protocols: Record<string, number>;
  errorSample: string | null;
}

function checkServerIdentity(_host: string, cert: { subjectaltname?: string }): Error | undefined {
  return (cert.subjectaltname ?? '').split(', ').includes(`URI:${args.expectedServerId}`) ? undefined : new Error('server SPIFFE ID mismatch');
}

interface Outcome {
  readonly ok: boolean;
  readonly session?: Buffer;
  readonly info?: { readonly reused: boolean; readonly group: string; readonly protocol: string };
  readonly error?: string;
}

/** Read while the connection is up (after destroy the TLS state is gone). */
function infoOf(sock: TLSSocket): NonNullable<Outcome['info']> {
  const group = sock.getEphemeralKeyInfo() as { name?: string } | null;
  return { reused: sock.isSessionReused(), group: group?.name ?? 'unknown', protocol: sock.getProtocol() ?? 'unknown' };
}

function once(session: Buffer | undefined): Promise<Outcome> {
  return new Promise((resolve) => {
    let latest: Buffer | undefined;
    const sock = connect({
      host: '127.0.0.1',
      port: args.port,
      servername: args.servername,
      ...(args.perConnectionContext ? material : { secureContext: cached }),
      rejectUnauthorized: true,
      checkServerIdentity,
      ...(session ? { session } : {}),
    });
    // TLS 1.3 sends tickets after the handshake (and Node emits 'session' per ticket): keep the latest.
    sock.on('session', (s: Buffer) => {
      latest = s;
    });
    let answered = false;
    let info: Outcome['info'];
    sock.once('secureConnect', () => {
      info = infoOf(sock);
      if (args.request === false) {
        answered = true;
        sock.end();
      } else sock.write(REQUEST);
    });
    sock.on('data', () => {
      answered = true;
    });
    sock.once('end', () => {
      sock.destroy();
      resolve(answered && info ? { ok: true, info, ...(latest ? { session: latest } : {}) } : { ok: false, error: 'closed without a response' });
    });
    sock.once('error', (e) => {
      sock.destroy();
      resolve({ ok: false, error: e.message });
    });
  });
}

async function run(ms: number): Promise<Tally> {
  const t: Tally = { handshakes: 0, resumed: 0, errors: 0, groups: {}, protocols: {}, errorSample: null };
  const deadline = Date.now() + ms;
  const loop = async () => {
    let session: Buffer | undefined;
    while (Date.now() < deadline) {
      const r = await once(args.resume ? session : undefined);
      if (!r.ok || !r.info) {
        t.errors++;
        t.errorSample ??= r.error ?? 'unknown';
        continue;
      }
      t.handshakes++;
      if (r.info.reused) t.resumed++;
      t.groups[r.info.group] = (t.groups[r.info.group] ?? 0) + 1;
      t.protocols[r.info.protocol] = (t.protocols[r.info.protocol] ?? 0) + 1;
      if (r.session) session = r.session;
    }
  };
  await Promise.all(Array.from({ length: args.concurrency }, loop));
  return t;
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const cmd = JSON.parse(line) as { runMs: number };
  void run(cmd.runMs).then((t) => process.stdout.write(`${JSON.stringify(t)}\n`));
});
rl.on('close', () => process.exit(0));
process.stdout.write('ready\n');
