// `tessera load`: an HTTP/1.1 load test (autocannon) with mTLS client certificates against any HTTP(S) endpoint.
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { METHODS } from 'node:http';
import { resolve as resolvePath } from 'node:path';
import { connect } from 'node:tls';
import { TesseraError } from '../../common/errors.js';
import { keyMatchesPublicKey } from '../../common/pki/keys.js';
import { certificatesOf, readNamedFile, readPrivateKeyFile } from '../../shared-io/read-named-file.js';
import { type ParsedArgs, requiredString, stringFlag } from '../args.js';
import { type CommandIo, EXIT_OK } from '../command.js';
import { loadHarness } from '../load-harness.js';
import { LOAD_RANGES } from '../commands/load.js';
import { durationFlag, numberFlag, shareFlag } from '../number-flags.js';
import { checkOutFile, writeOutFile } from '../output-files.js';

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
  return shareFlag(args, 'max-error-rate') ?? 0;
}

/** How long an aborted run may take to hand back its counts before `load` leaves without them. */
const STOP_GRACE_MS = 5_000;

/** --method: one Node's HTTP client sends (autocannon's own refusal of another one had no code: audit 55a F5). */
function methodFlag(args: ParsedArgs): string | undefined {
  const v = stringFlag(args, 'method');
  if (v === undefined) return undefined;
  const method = v.toUpperCase();
  if (!METHODS.includes(method)) throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--method ${JSON.stringify(v.slice(0, 40))} is not an HTTP method (e.g. GET, POST, PUT, DELETE)`);
  return method;
}

/** --key is the key of --cert's leaf: a mix-up is told before the run, not as every connection's TLS failure. */
function checkPair(args: ParsedArgs, cert: Buffer, key: Buffer): void {
  const leaf = certificatesOf({ path: stringFlag(args, 'cert')!, what: '--cert' }, cert)[0]!;
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (e) {
    throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--key ${stringFlag(args, 'key')!} is not a private key: ${(e as Error).message}`);
  }
  if (!keyMatchesPublicKey(privateKey, leaf.publicKey)) {
    throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--key ${stringFlag(args, 'key')!} is not the key of the certificate in --cert ${stringFlag(args, 'cert')!}`);
  }
}

export async function runLoad(args: ParsedArgs, io: CommandIo): Promise<number> {
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
  const durationMs = durationFlag(args, 'duration', LOAD_RANGES.duration) ?? 10_000;
  const timeoutMs = durationFlag(args, 'timeout', LOAD_RANGES.timeout) ?? 10_000;
  const method = methodFlag(args);
  const maxRate = maxErrorRate(args);
  const headers: Record<string, string> = {};
  for (const h of (args.flags['header'] as string[] | undefined) ?? []) {
    const i = h.indexOf(':');
    if (i <= 0) throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--header "${h}" is not "Name: value"`);
    headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
  }
  const connections = numberFlag(args, 'connections', true, LOAD_RANGES.connections) ?? 10;
  const rate = numberFlag(args, 'rate', false, LOAD_RANGES.rate);
  if (cert && key) checkPair(args, cert, key);
  const jsonFlag = stringFlag(args, 'json');
  const json = jsonFlag === undefined ? undefined : resolvePath(io.cwd, jsonFlag);
  // Before the run: minutes of load are not spent to find the results have nowhere to go.
  if (json !== undefined) await checkOutFile('json', json);
  if (ca) {
    const id = await verifyServer(url, { ca, ...(cert && key ? { cert, key } : {}) });
    io.stderr(`server certificate verified against --ca; server identity ${id}\n`);
  }
  const abort = new AbortController();
  void io.stopSignal.then(() => abort.abort());
  // Loaded here, not at the top, through loadHarness: the container image leaves the harness and autocannon out, and
  // there the command fails with its code; and the checks above answer without loading them.
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
  // autocannon ends the run at --duration and on a stop (abort); should it not (a server that never answers keeps
  // requests open up to --timeout), the run is aborted past duration + timeout, and abandoned STOP_GRACE_MS after an
  // abort: `load` ends at its duration and on SIGTERM, whatever its connection count (audit 55a F4).
  // Unref'd timers: a run in progress holds the process open, and one that ended must not wait for them.
  const backstop = io.timers.setTimeout(() => abort.abort(), Math.min(durationMs + timeoutMs, 2 ** 31 - 1));
  const abandoned = new Promise<never>((_, reject) =>
    abort.signal.addEventListener('abort', () => io.timers.setTimeout(() => reject(new TesseraError('TESSERA_ERR_BENCH_LOAD_FAILED', `the load generator did not stop within ${STOP_GRACE_MS / 1000} s of being asked to; its results are lost`)), STOP_GRACE_MS), { once: true }),
  );
  abandoned.catch(() => undefined);
  const running = runAutocannon({
    url: url.href,
    connections,
    durationMs,
    ...(rate ? { rateRps: rate } : {}),
    timeoutSeconds: timeoutMs / 1000,
    ...(cert && key ? { tls: { cert, key, ...(ca ? { ca } : {}) } } : {}),
    ...(method ? { method } : {}),
    ...(Object.keys(headers).length ? { headers } : {}),
    signal: abort.signal,
    onTick: (ms, n) => sink.progress(ms / durationMs, `${formatNumber(n / (ms / 1000))} req/s`),
  });
  const result = await Promise.race([running, abandoned]).finally(() => io.timers.clearTimeout(backstop));
  sink.done();
  io.stdout(loadSummary(url.href, result));
  if (json) await writeOutFile('json', json, `${JSON.stringify({ url: url.href, connections, durationMs, rateRps: rate ?? null, timeoutMs, maxErrorRate: maxRate, ...result }, null, 2)}\n`, 0o644);
  const counts = `TLS/connection ${result.connectionErrors}, non-2xx ${result.non2xx}, timeouts ${result.timeouts}, statuses ${JSON.stringify(result.statusCounts)}${result.errorSamples[0] ? `, e.g. ${result.errorSamples[0]}` : ''}`;
  if (result.ok2xx === 0) throw new TesseraError('TESSERA_ERR_BENCH_LOAD_FAILED', `no 2xx response from ${url.href} (${counts})`);
  if (result.errorRate > maxRate) {
    throw new TesseraError('TESSERA_ERR_BENCH_LOAD_ERRORS', `${percent(result.errorRate)} of attempts failed, above --max-error-rate ${percent(maxRate)} (${counts})`);
  }
  return EXIT_OK;
}
