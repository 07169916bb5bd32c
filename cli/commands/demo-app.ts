// `tessera demo-app`: a small real HTTP app for the local mesh; it answers every request with what it saw,
// so the forwarded caller identity (x-forwarded-client-cert) and trace context are visible, and which replica
// (instance) answered, so balancing is visible too.
import { createServer } from 'node:http';
import { TesseraError } from '../../common/errors.js';
import { parseAddress } from '../../common/config/validate-yaml.js';
import { requiredString, stringFlag } from '../args.js';
import { type Command, EXIT_OK } from '../command.js';
import { durationFlag } from './bench.js';

export const demoAppCommand: Command = {
  path: ['demo-app'],
  ownsStop: true,
  summary: 'Run a small HTTP echo app (used by `tessera up`)',
  usage: '--name NAME --listen HOST:PORT [--instance ID] [--delay D]',
  details: 'Answers every request with JSON: app name, instance, method, path, and the request headers it received.',
  flags: {
    name: { type: 'string', value: 'NAME', description: 'Name reported in every answer', required: true },
    listen: { type: 'string', value: 'HOST:PORT', description: 'Address to listen on (loopback)', required: true },
    instance: { type: 'string', value: 'ID', description: 'Replica reported in every answer (`instance`, and the x-demo-instance header); default: the name' },
    delay: { type: 'string', value: 'D', description: 'Answer every request this much later (e.g. 50ms): a slow replica' },
  },
  async run(args, io) {
    const name = requiredString(args, 'name');
    const instance = stringFlag(args, 'instance') ?? name;
    const delayMs = durationFlag(args, 'delay') ?? 0;
    const addr = parseAddress(requiredString(args, 'listen'));
    if (!addr) throw new TesseraError('TESSERA_ERR_CLI_USAGE', '--listen must be HOST:PORT');
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
  },
};
