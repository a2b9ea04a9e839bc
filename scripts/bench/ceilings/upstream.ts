/**
 * Trivial upstream for the nginx ceiling: reads the body, answers 201 with a send-shaped JSON
 * body. Runs as its own process (so it does not share a core's event loop with the bench) and
 * prints its port on stdout.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const body = `{"message_id":"${randomUUID()}","sent_at":"${new Date().toISOString()}"}`;
    res.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  console.log(String((server.address() as AddressInfo).port));
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
