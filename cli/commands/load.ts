// `tessera load`: an HTTP/1.1 load test (autocannon) with mTLS client certificates against any HTTP(S) endpoint.
import { type Command, runOnDemand } from '../command.js';

/** The ranges of load's numbers (docs/cli.md): past them a value is a typo, and one that big stalls the process. */
export const LOAD_RANGES = {
  connections: { min: 1, max: 10_000 },
  duration: { min: 1, max: 2 ** 31 - 1 },
  // autocannon refuses a timeout under 1 s.
  timeout: { min: 1_000, max: 3_600_000 },
  rate: { min: 0.01, max: 1_000_000 },
} as const;

export const loadCommand: Command = {
  path: ['load'],
  ownsStop: true,
  summary: 'Load-test any HTTP or HTTPS endpoint (mTLS client certificates supported): req/s, latency percentiles, errors',
  usage: '--url URL [--method M] [--header H ...] [--cert F --key F] [--ca F] [--connections N] [--duration D] [--rate R] [--timeout D] [--max-error-rate R] [--json F]',
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
    connections: { type: 'string', value: 'N', description: 'Concurrent connections, 1 to 10000 (default 10)' },
    duration: { type: 'string', value: 'D', description: 'How long to run, at most 24d (default 10s)' },
    rate: { type: 'string', value: 'R', description: 'Fixed request rate over all connections, requests/s, 0.01 to 1000000 (default: as fast as possible)' },
    timeout: { type: 'string', value: 'D', description: 'A request unanswered this long counts as a timeout, 1s to 1h (default 10s)' },
    'max-error-rate': { type: 'string', value: 'R', description: 'Largest share of failed attempts that still exits 0: a fraction or a percentage (default 0)' },
    method: { type: 'string', value: 'M', description: 'HTTP method, one Node knows (GET, POST, …; default GET)' },
    header: { type: 'string', value: 'H', description: 'Request header "Name: value" (repeatable)', multiple: true },
    json: { type: 'string', value: 'FILE', description: 'Write the results as JSON here' },
  },
  run: runOnDemand(() => import('../run/load.js'), (m) => m.runLoad),
};
