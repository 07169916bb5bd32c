// The app behind the held inbound TCP listener (argv[2] = port): holds every connection for as long as the peer
// does (an HTTP app would cut idle ones at its own headers timeout), and answers any bytes with one HTTP 200.
import { createServer } from 'node:net';

const port = Number(process.argv[2] ?? 0);
const server = createServer((socket) => {
  socket.on('error', () => socket.destroy());
  socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n'));
});
server.maxConnections = 100_000;
server.listen(port, '127.0.0.1', () => process.stdout.write(`ready ${port}\n`));
process.on('SIGTERM', () => process.exit(0));
