// `tessera demo-app`: a small real HTTP app for the local mesh; it answers every request with what it saw,
// so the forwarded caller identity (x-forwarded-client-cert) and trace context are visible.
import { createServer } from 'node:http';
import { TesseraError } from '../../common/errors.js';
import { parseAddress } from '../../common/config/validate-yaml.js';
import { requiredString } from '../args.js';
import { type Command, EXIT_OK } from '../command.js';

export const demoAppCommand: Command = {
  path: ['demo-app'],
  summary: 'Run a small HTTP echo app (used by `tessera up`)',
  usage: '--name NAME --listen HOST:PORT',
  details: 'Answers every request with JSON: app name, method, path, and the request headers it received.',
  flags: {
    name: { type: 'string', value: 'NAME', description: 'Name reported in every answer', required: true },
    listen: { type: 'string', value: 'HOST:PORT', description: 'Address to listen on (loopback)', required: true },
  },
  async run(args, io) {
    const name = requiredString(args, 'name');
    const addr = parseAddress(requiredString(args, 'listen'));
    if (!addr) throw new TesseraError('TESSERA_ERR_CLI_USAGE', '--listen must be HOST:PORT');
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const body = JSON.stringify({ app: name, method: req.method, path: req.url, headers: req.headers }, null, 2);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(addr.port, addr.host, () => resolve());
    });
    const bound = server.address();
    io.stdout(`tessera demo-app: ready name=${name} listen=${typeof bound === 'object' && bound ? `${bound.address}:${bound.port}` : ''}\n`);
    await io.stopSignal;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return EXIT_OK;
  },
};
