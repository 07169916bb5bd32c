// `tessera load`: an HTTP/1.1 load test (autocannon) with mTLS client certificates against any HTTP(S) endpoint.
import { writeFile } from 'node:fs/promises';
import { connect } from 'node:tls';
import { TesseraError } from '../../common/errors.js';
import { certificatesOf, readNamedFile, readPrivateKeyFile } from '../../shared-io/read-named-file.js';
import { type ParsedArgs, requiredString, stringFlag } from '../args.js';
import { type Command, EXIT_OK } from '../command.js';
import { loadHarness } from '../load-harness.js';
import { durationFlag, positiveNumberFlag } from './bench.js';

/** --cert/--ca hold certificates, --key a private key: each is checked here, so a mix-up is named, not a handshake failure. */
async function readFlagFile(args: ParsedArgs, name: 'cert' | 'key' | 'ca'): Promise<Buffer | undefined> {
  const path = stringFlag(args, name);
  if (path === undefined) return undefined;
  const file = { path, what: `--${name}` };
  if (name === 'key') return readPrivateKeyFile(file);
  const data = await readNamedFile(file);
  certificatesOf(file, data);
  return data;
}

/** autocannon never verifies the server; with --ca, one handshake first checks the chain (and shows its SPIFFE ID). */
function verifyServer(url: URL, tls: { cert?: Buffer; key?: Buffer; ca: Buffer }): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({
      host: url.hostname,
      port: Number(url.port || 443),
      ca: tls.ca,
      ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
      // SVIDs carry a SPIFFE URI SAN and usually no DNS name: the chain is checked, the name is shown instead.
      checkServerIdentity: () => undefined,
      rejectUnauthorized: true,
    });
    sock.setTimeout(5_000, () => sock.destroy(new Error('TLS handshake timed out')));
    sock.once('secureConnect', () => {
      const san = sock.getPeerCertificate().subjectaltname ?? '';
      sock.destroy();
      resolve(/URI:(spiffe:\/\/[^,\s]+)/.exec(san)?.[1] ?? (san || 'no SAN'));
    });
    sock.once('error', (e) => reject(new TesseraError(untrusted(e) ? 'TESSERA_ERR_BENCH_LOAD_UNTRUSTED' : 'TESSERA_ERR_BENCH_LOAD_FAILED', `${url.host}: ${e.message}`)));
  });
}

/**
 * Whether a TLS connection failed because the chain did not verify: OpenSSL's verify codes (UNABLE_TO_VERIFY_LEAF_
 * SIGNATURE, CERT_HAS_EXPIRED, ...) carry no syscall, unlike a refused or unreachable connect, and are not Node's
 * own ERR_* codes (a protocol failure, a timeout). Audit 36b: a refused connect was told as an untrusted chain.
 */
function untrusted(e: Error): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return typeof code === 'string' && !('syscall' in e) && !code.startsWith('ERR_');
}

/** --max-error-rate: a fraction 0..1 or a percentage ("1%"); default 0, any failure fails the run. */
export function maxErrorRate(args: ParsedArgs): number {
  const v = stringFlag(args, 'max-error-rate');
  if (v === undefined) return 0;
  const t = v.trim();
  const pct = t.endsWith('%');
  const digits = pct ? t.slice(0, -1).trim() : t;
  // Decimal only: Number() would read '' (a bare '%') as 0 and '0x1' as 1.
  const n = /^\d+(\.\d+)?$|^\.\d+$/.test(digits) ? Number(digits) / (pct ? 100 : 1) : Number.NaN;
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--max-error-rate must be a fraction from 0 to 1 or a percentage, got "${v}"`);
  return n;
}

export const loadCommand: Command = {
  path: ['load'],
  ownsStop: true,
  summary: 'Load-test any HTTP or HTTPS endpoint (mTLS client certificates supported): req/s, latency percentiles, errors',
  usage: '--url URL [--cert F --key F] [--ca F] [--connections N] [--duration D] [--rate R] [--timeout D] [--max-error-rate R] [--json F]',
  details:
    'HTTP/1.1 keep-alive load with autocannon. --cert/--key present a client certificate (chain, leaf first) for mTLS. ' +
    'autocannon itself never verifies the server: with --ca, one handshake first verifies the server chain against it ' +
    '(exit 1 if it does not) and prints the server SPIFFE ID. TLS/connection failures (a refused handshake included), ' +
    'non-2xx answers and timeouts are counted apart; exit 1 when no request succeeded or when their share of all ' +
    'attempts is above --max-error-rate.',
  flags: {
    url: { type: 'string', value: 'URL', description: 'Target, e.g. https://127.0.0.1:15006/', required: true },
    cert: { type: 'string', value: 'FILE', description: 'Client certificate chain (PEM) for mTLS' },
    key: { type: 'string', value: 'FILE', description: 'Client private key (PEM)' },
    ca: { type: 'string', value: 'FILE', description: 'Trust bundle to verify the server with before the run' },
    connections: { type: 'string', value: 'N', description: 'Concurrent connections (default 10)' },
    duration: { type: 'string', value: 'D', description: 'How long to run (default 10s)' },
    rate: { type: 'string', value: 'R', description: 'Fixed request rate over all connections, requests/s (default: as fast as possible)' },
    timeout: { type: 'string', value: 'D', description: 'A request unanswered this long counts as a timeout (at least 1s; default 10s)' },
    'max-error-rate': { type: 'string', value: 'R', description: 'Largest share of failed attempts that still exits 0: a fraction or a percentage (default 0)' },
    method: { type: 'string', value: 'M', description: 'HTTP method (default GET)' },
    header: { type: 'string', value: 'H', description: 'Request header "Name: value" (repeatable)', multiple: true },
    json: { type: 'string', value: 'FILE', description: 'Write the results as JSON here' },
  },
  async run(args, io) {
    const urlText = requiredString(args, 'url');
    let url: URL;
    try {
      url = new URL(urlText);
    } catch {
      throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--url "${urlText}" is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TesseraError('TESSERA_ERR_CLI_USAGE', '--url must be http:// or https://');
    const cert = await readFlagFile(args, 'cert');
    const key = await readFlagFile(args, 'key');
    const ca = await readFlagFile(args, 'ca');
    if ((cert === undefined) !== (key === undefined)) throw new TesseraError('TESSERA_ERR_CLI_USAGE', '--cert and --key go together');
    if ((cert || ca) && url.protocol !== 'https:') throw new TesseraError('TESSERA_ERR_CLI_USAGE', '--cert/--key/--ca need an https:// URL');
    const durationMs = durationFlag(args, 'duration') ?? 10_000;
    const timeoutMs = durationFlag(args, 'timeout') ?? 10_000;
    // autocannon refuses a timeout under 1 s.
    if (timeoutMs < 1000) throw new TesseraError('TESSERA_ERR_CLI_USAGE', '--timeout must be at least 1s');
    const maxRate = maxErrorRate(args);
    const headers: Record<string, string> = {};
    for (const h of (args.flags['header'] as string[] | undefined) ?? []) {
      const i = h.indexOf(':');
      if (i <= 0) throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--header "${h}" is not "Name: value"`);
      headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
    }
    const connections = positiveNumberFlag(args, 'connections', true) ?? 10;
    const rate = positiveNumberFlag(args, 'rate', false);
    if (ca) {
      const id = await verifyServer(url, { ca, ...(cert && key ? { cert, key } : {}) });
      io.stderr(`server certificate verified against --ca; server identity ${id}\n`);
    }
    const abort = new AbortController();
    void io.stopSignal.then(() => abort.abort());
    // Loaded here, not at the top: the load harness and autocannon would otherwise sit in the RSS of every
    // `tessera` process, sidecars included (test/unit/cli/sidecar-import-graph.test.ts).
    const [{ terminalProgress }, { formatNumber }, { loadSummary, percent }, { runAutocannon }] = await loadHarness('tessera load', () =>
      Promise.all([
        import('../../bench/harness/progress.js'),
        import('../../bench/harness/stats.js'),
        import('../../bench/harness/load-summary.js'),
        import('../../bench/harness/autocannon-load.js'),
      ]),
    );
    const sink = terminalProgress(io.stderr, process.stderr.isTTY === true, () => process.stderr.columns ?? 100, () => io.clock.nowMs());
    sink.log(`tessera load: ${url.href}, ${connections} connections, ${durationMs / 1000} s${rate ? `, ${rate} req/s` : ''}${cert ? ', mTLS' : ''}`);
    const result = await runAutocannon({
      url: url.href,
      connections,
      durationMs,
      ...(rate ? { rateRps: rate } : {}),
      timeoutSeconds: timeoutMs / 1000,
      ...(cert && key ? { tls: { cert, key, ...(ca ? { ca } : {}) } } : {}),
      ...(stringFlag(args, 'method') ? { method: stringFlag(args, 'method')!.toUpperCase() } : {}),
      ...(Object.keys(headers).length ? { headers } : {}),
      signal: abort.signal,
      onTick: (ms, n) => sink.progress(ms / durationMs, `${formatNumber(n / (ms / 1000))} req/s`),
    });
    sink.done();
    io.stdout(loadSummary(url.href, result));
    const json = stringFlag(args, 'json');
    if (json) await writeFile(json, `${JSON.stringify({ url: url.href, connections, durationMs, rateRps: rate ?? null, timeoutMs, maxErrorRate: maxRate, ...result }, null, 2)}\n`);
    const counts = `TLS/connection ${result.connectionErrors}, non-2xx ${result.non2xx}, timeouts ${result.timeouts}, statuses ${JSON.stringify(result.statusCounts)}${result.errorSamples[0] ? `, e.g. ${result.errorSamples[0]}` : ''}`;
    if (result.ok2xx === 0) throw new TesseraError('TESSERA_ERR_BENCH_LOAD_FAILED', `no 2xx response from ${url.href} (${counts})`);
    if (result.errorRate > maxRate) {
      throw new TesseraError('TESSERA_ERR_BENCH_LOAD_ERRORS', `${percent(result.errorRate)} of attempts failed, above --max-error-rate ${percent(maxRate)} (${counts})`);
    }
    return EXIT_OK;
  },
};
