// `tessera load`: an HTTP/1.1 load test (autocannon) with mTLS client certificates against any HTTP(S) endpoint.
import { readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:tls';
import { parseDuration } from '../../common/duration.js';
import { TesseraError } from '../../common/errors.js';
import type { LoadResult } from '../../bench/harness/autocannon-load.js';
import { terminalProgress } from '../../bench/harness/progress.js';
import { formatNumber } from '../../bench/harness/stats.js';
import { type ParsedArgs, requiredString, stringFlag } from '../args.js';
import { type Command, EXIT_OK } from '../command.js';
import { positiveNumberFlag } from './bench.js';

async function readFlagFile(args: ParsedArgs, name: string): Promise<Buffer | undefined> {
  const path = stringFlag(args, name);
  if (path === undefined) return undefined;
  try {
    return await readFile(path);
  } catch (e) {
    throw new TesseraError('TESSERA_ERR_CLI_FILE_UNREADABLE', `cannot read --${name} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
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
    sock.once('error', (e) => reject(new TesseraError('TESSERA_ERR_BENCH_LOAD_UNTRUSTED', `${url.host}: ${e.message}`)));
  });
}

export function loadSummary(url: string, r: LoadResult): string {
  const l = r.latency;
  const ms = (x: number) => (Number.isFinite(x) ? formatNumber(x) : '–');
  const statuses = Object.entries(r.statusCounts).sort(([a], [b]) => a.localeCompare(b)).map(([code, n]) => `${code} × ${formatNumber(n)}`);
  return [
    `target     ${url}`,
    `requests   ${formatNumber(r.responses)} in ${(r.elapsedMs / 1000).toFixed(1)} s = ${formatNumber(r.reqPerSec)} req/s (2xx)`,
    `latency ms p50 ${ms(l.p50Ms)}  p90 ${ms(l.p90Ms)}  p99 ${ms(l.p99Ms)}  p99.9 ${ms(l.p999Ms)}  max ${ms(l.maxMs)}  mean ${ms(l.meanMs)}`,
    `status     ${statuses.length ? statuses.join(', ') : 'none'}`,
    `errors     ${formatNumber(r.errors)} (of which timeouts ${formatNumber(r.timeouts)})${r.errorSamples.length ? `: ${r.errorSamples.join('; ')}` : ''}`,
    '',
  ].join('\n');
}

export const loadCommand: Command = {
  path: ['load'],
  summary: 'Load-test any HTTP or HTTPS endpoint (mTLS client certificates supported): req/s, latency percentiles, errors',
  usage: '--url URL [--cert F --key F] [--ca F] [--connections N] [--duration D] [--rate R] [--json F]',
  details:
    'HTTP/1.1 keep-alive load with autocannon. --cert/--key present a client certificate (chain, leaf first) for mTLS. ' +
    'autocannon itself never verifies the server: with --ca, one handshake first verifies the server chain against it ' +
    '(exit 1 if it does not) and prints the server SPIFFE ID. Exit 1 when no request succeeded.',
  flags: {
    url: { type: 'string', value: 'URL', description: 'Target, e.g. https://127.0.0.1:15006/', required: true },
    cert: { type: 'string', value: 'FILE', description: 'Client certificate chain (PEM) for mTLS' },
    key: { type: 'string', value: 'FILE', description: 'Client private key (PEM)' },
    ca: { type: 'string', value: 'FILE', description: 'Trust bundle to verify the server with before the run' },
    connections: { type: 'string', value: 'N', description: 'Concurrent connections (default 10)' },
    duration: { type: 'string', value: 'D', description: 'How long to run (default 10s)' },
    rate: { type: 'string', value: 'R', description: 'Fixed request rate over all connections, requests/s (default: as fast as possible)' },
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
    let durationMs = 10_000;
    const d = stringFlag(args, 'duration');
    if (d !== undefined) {
      try {
        durationMs = parseDuration(d);
      } catch {
        throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--duration "${d}" is not a duration (e.g. 10s, 1m)`);
      }
    }
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
    const sink = terminalProgress(io.stderr, process.stderr.isTTY === true, () => process.stderr.columns ?? 100, () => io.clock.nowMs());
    sink.log(`tessera load: ${url.href}, ${connections} connections, ${durationMs / 1000} s${rate ? `, ${rate} req/s` : ''}${cert ? ', mTLS' : ''}`);
    // Loaded here, not at the top: autocannon would otherwise sit in the RSS of every `tessera` process.
    const { runAutocannon } = await import('../../bench/harness/autocannon-load.js');
    const result = await runAutocannon({
      url: url.href,
      connections,
      durationMs,
      ...(rate ? { rateRps: rate } : {}),
      ...(cert && key ? { tls: { cert, key, ...(ca ? { ca } : {}) } } : {}),
      ...(stringFlag(args, 'method') ? { method: stringFlag(args, 'method')!.toUpperCase() } : {}),
      ...(Object.keys(headers).length ? { headers } : {}),
      signal: abort.signal,
      onTick: (ms, n) => sink.progress(ms / durationMs, `${formatNumber(n / (ms / 1000))} req/s`),
    });
    sink.done();
    io.stdout(loadSummary(url.href, result));
    const json = stringFlag(args, 'json');
    if (json) await writeFile(json, `${JSON.stringify({ url: url.href, connections, durationMs, rateRps: rate ?? null, ...result }, null, 2)}\n`);
    if (result.ok2xx === 0) {
      const statuses = JSON.stringify(result.statusCounts);
      throw new TesseraError('TESSERA_ERR_BENCH_LOAD_FAILED', `no 2xx response from ${url.href} (errors ${result.errors}, statuses ${statuses}${result.errorSamples[0] ? `, e.g. ${result.errorSamples[0]}` : ''})`);
    }
    return EXIT_OK;
  },
};
