// `tessera demo-app`: a small real HTTP app for the local mesh; it answers every request with what it saw,
// so the forwarded caller identity (x-forwarded-client-cert) and trace context are visible, and which replica
// (instance) answered, so balancing is visible too.
import { createServer } from 'node:http';
import { addressProblem, parseAddress } from '../../common/config/address.js';
import { TesseraError } from '../../common/errors.js';
import { type ParsedArgs, requiredString, stringFlag } from '../args.js';
import { type CommandIo, EXIT_OK } from '../command.js';
import { DELAY_RANGE } from '../commands/demo-app.js';
import { durationFlag } from '../number-flags.js';

export async function runDemoApp(args: ParsedArgs, io: CommandIo): Promise<number> {
  const name = requiredString(args, 'name');
  const instance = stringFlag(args, 'instance') ?? name;
  const delayMs = durationFlag(args, 'delay', DELAY_RANGE) ?? 0;
  const listen = requiredString(args, 'listen');
  const addr = parseAddress(listen);
  if (!addr) throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--listen must be HOST:PORT (${JSON.stringify(listen)} ${addressProblem(listen)})`);
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify({ app: name, instance, method: req.method, path: req.url, headers: req.headers }, null, 2);
      const answer = () => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-demo-instance': instance });
        res.end(body);
      };
      if (delayMs > 0) io.timers.setTimeout(answer, delayMs, 'keep-alive');
      else answer();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => resolve());
  });
  const bound = server.address();
  io.stdout(`tessera demo-app: ready name=${name} instance=${instance} listen=${typeof bound === 'object' && bound ? `${bound.address}:${bound.port}` : ''}\n`);
  await io.stopSignal;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return EXIT_OK;
}
