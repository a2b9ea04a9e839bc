import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';

const answers: Record<string, [number, string, string, string]> = {
  HPE_HEADER_OVERFLOW: [
    431,
    'Request Header Fields Too Large',
    'headers_too_large',
    'request headers are too large',
  ],
  ERR_HTTP_REQUEST_TIMEOUT: [
    408,
    'Request Timeout',
    'request_timeout',
    'the request took too long to arrive',
  ],
};

/**
 * Node's HTTP parser refuses some requests before Koa sees them: headers over 16 KiB (431),
 * malformed HTTP (400), a request that never completes (408). By default it answers those
 * with an empty body; answer in the API's error shape instead, then close the connection.
 */
export function answerClientErrorsAsJson(server: Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // A response already under way on this connection cannot be followed by another one.
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const [status, reason, error, message] = answers[err.code ?? ''] ?? [
      400,
      'Bad Request',
      'invalid_request',
      'malformed HTTP request',
    ];
    const body = JSON.stringify({ error, message });
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}
