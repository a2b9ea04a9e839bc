import { EventEmitter, once } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real local HTTP server standing in for a device's push address. It records every request
 * and answers from a script:
 *
 *   const sink = await startSink({ script: [{ status: 500 }, { status: 500 }] }); // then 200s
 *   // user_address: sink.url + '/push?x=1'
 *   await sink.waitFor((reqs) => reqs.length >= 3);
 *   sink.requests[2].json().id;  sink.requests[2].headers['webhook-id'];
 *   await sink.close();
 */
export interface SinkRequest {
  method: string;
  /** Path with query, e.g. `/push?x=1`. */
  path: string;
  headers: IncomingHttpHeaders;
  /** Raw body text, byte for byte as received (what the signature covers). */
  body: string;
  /** Date.now() when the request was fully received. */
  at: number;
  // biome-ignore lint/suspicious/noExplicitAny: tests assert on arbitrary JSON shapes
  json(): any;
}

interface SinkAnswer {
  /** Default 200. */
  status?: number;
  /** Sent as the Retry-After header (seconds or an HTTP date). */
  retryAfter?: string;
  /** Sent as the Location header (with a 3xx). */
  location?: string;
  /** Wait this long before answering (simulate a slow or hanging receiver). */
  delayMs?: number;
}

export interface SinkOptions {
  /** Answers for the first requests, in order. */
  script?: SinkAnswer[];
  /** Answer once the script is used up, or for every request when a function. Default `{status: 200}`. */
  otherwise?: SinkAnswer | ((req: SinkRequest) => SinkAnswer);
}

export interface Sink {
  /** `http://127.0.0.1:<port>` (no trailing slash). */
  url: string;
  port: number;
  requests: SinkRequest[];
  /** Appends answers to the script. */
  script(...answers: SinkAnswer[]): void;
  /** Resolves once `predicate(requests)` holds; rejects after `timeoutMs` with what arrived so far. */
  waitFor(predicate: (reqs: SinkRequest[]) => boolean, timeoutMs?: number): Promise<SinkRequest[]>;
  close(): Promise<void>;
}

export async function startSink(opts: SinkOptions = {}): Promise<Sink> {
  const script = [...(opts.script ?? [])];
  const otherwise = opts.otherwise ?? { status: 200 };
  const requests: SinkRequest[] = [];
  const arrivals = new EventEmitter();
  const timers = new Set<NodeJS.Timeout>();

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const recorded: SinkRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body,
        at: Date.now(),
        json: () => JSON.parse(body),
      };
      requests.push(recorded);
      arrivals.emit('request');
      const answer = script.shift() ?? (typeof otherwise === 'function' ? otherwise(recorded) : otherwise);
      const respond = () => {
        const headers: Record<string, string> = { 'content-type': 'text/plain' };
        if (answer.retryAfter !== undefined) headers['retry-after'] = answer.retryAfter;
        if (answer.location !== undefined) headers.location = answer.location;
        res.writeHead(answer.status ?? 200, headers).end('ok');
      };
      if (!answer.delayMs) return respond();
      const t = setTimeout(() => {
        timers.delete(t);
        respond();
      }, answer.delayMs);
      timers.add(t);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    script: (...answers) => void script.push(...answers),
    waitFor(predicate, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!predicate(requests)) return;
          cleanup();
          resolve(requests);
        };
        const timer = setTimeout(() => {
          cleanup();
          const seen = requests.map((r) => `${r.method} ${r.path}`).join(', ');
          reject(new Error(`sink: condition not met in ${timeoutMs} ms; got ${requests.length}: ${seen}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          arrivals.off('request', check);
        };
        arrivals.on('request', check);
        check();
      });
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
