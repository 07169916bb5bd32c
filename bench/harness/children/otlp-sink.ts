// A minimal OTLP/HTTP traces sink for the tracing bench (argv[2] = port): accepts POST /v1/traces, answers 200,
// counts requests, bytes and spans; GET /stats returns the counts as JSON. Runs as its own process so its CPU is
// not counted in the proxies'.
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 0);
const stats = { exports: 0, spans: 0, bytes: 0, unparsed: 0 };

/** Spans in an OTLP JSON ExportTraceServiceRequest (resourceSpans → scopeSpans → spans). */
function countSpans(body: string): number | null {
  try {
    const doc = JSON.parse(body) as { resourceSpans?: { scopeSpans?: { spans?: unknown[] }[] }[] };
    let n = 0;
    for (const rs of doc.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) n += ss.spans?.length ?? 0;
    return n;
  } catch {
    return null;
  }
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(stats));
    return;
  }
  if (req.method !== 'POST' || req.url !== '/v1/traces') {
    req.resume();
    res.writeHead(404).end();
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    stats.exports++;
    stats.bytes += body.length;
    const json = (req.headers['content-type'] ?? '').includes('json');
    // Protobuf bodies are accepted and counted in bytes only (the proxy's exporter sends JSON).
    const n = json ? countSpans(body.toString('utf8')) : null;
    if (n === null) stats.unparsed++;
    else stats.spans += n;
    // An empty ExportTraceServiceResponse: full success.
    if (json) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
  });
});
server.keepAliveTimeout = 75_000;
server.listen(port, '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`ready ${typeof addr === 'object' && addr ? addr.port : port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
