import { Agent, request } from 'undici';
import type { SenderConfig } from './config.ts';
import type { Answer, ErrorClass } from './outcome.ts';
import { BlockedAddressError, guardedConnector, pushUrl } from './ssrf.ts';
import { webhookHeaders } from './webhook-signature.ts';

interface PushResult {
  answer: Answer;
  durationMs: number;
  /** Short, loggable description of a failure (no bodies). */
  error?: string;
}

export interface Pusher {
  push(address: string, eventId: string, body: string): Promise<PushResult>;
  close(): Promise<void>;
}

const codes: [RegExp, ErrorClass][] = [
  [/^EBLOCKEDADDRESS$/, 'blocked_address'],
  [/^UND_ERR_CONNECT_TIMEOUT$/, 'connect_timeout'],
  [/^(UND_ERR_HEADERS_TIMEOUT|UND_ERR_BODY_TIMEOUT|UND_ERR_ABORTED|ETIMEDOUT|ABORT_ERR)$/, 'timeout'],
  [/^(ENOTFOUND|EAI_AGAIN|EAI_FAIL|EAI_NODATA|EAI_NONAME)$/, 'dns'],
  [/^(ERR_TLS_|ERR_SSL_|CERT_|DEPTH_ZERO|SELF_SIGNED|UNABLE_TO_)/, 'tls'],
  [
    /^(ECONNREFUSED|ECONNRESET|EPIPE|EHOSTUNREACH|ENETUNREACH|EHOSTDOWN|ENETDOWN|UND_ERR_SOCKET|UND_ERR_CLOSED)$/,
    'connection',
  ],
];

/** Maps whatever undici/node threw (possibly wrapped in `cause`) to an error class. */
export function classify(err: unknown): ErrorClass {
  for (
    let e = err as { code?: unknown; name?: unknown; cause?: unknown } | undefined, depth = 0;
    e && depth < 4;
    depth++
  ) {
    if (e instanceof BlockedAddressError) return 'blocked_address';
    if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timeout';
    const code = typeof e.code === 'string' ? e.code : '';
    for (const [re, cls] of codes) if (re.test(code)) return cls;
    e = e.cause as typeof e;
  }
  return 'other';
}

/**
 * HTTP side of a push: one undici Agent (a keep-alive pool per origin), a guarded connector,
 * connect timeout SENDER_CONNECT_TIMEOUT_MS and SENDER_TIMEOUT_MS for the whole exchange.
 * Redirects are never followed (undici only follows them with the redirect interceptor, which
 * is not installed): a 3xx is an answer like any other. The response body is discarded.
 */
export function createPusher(config: SenderConfig, secretKey: Uint8Array): Pusher {
  const agent = new Agent({
    connect: guardedConnector({
      timeoutMs: config.SENDER_CONNECT_TIMEOUT_MS,
      allowPrivate: config.SENDER_ALLOW_PRIVATE_ADDRESSES,
    }),
    connections: config.SENDER_CONNECTIONS_PER_ORIGIN,
    keepAliveTimeout: 30_000,
    headersTimeout: config.SENDER_TIMEOUT_MS,
    bodyTimeout: config.SENDER_TIMEOUT_MS,
  });

  return {
    async push(address, eventId, body) {
      const started = performance.now();
      const ms = () => Math.round(performance.now() - started);
      // Not AbortSignal.timeout(): its timer and signal live the whole SENDER_TIMEOUT_MS after a
      // push that took milliseconds, so every push's signal got promoted to the old generation
      // (the 600 s soak saw the sender's heap saw-tooth between ~35 and ~85 MiB). A cleared
      // timer lets the signal die young.
      const abort = new AbortController();
      const timer = setTimeout(
        () => abort.abort(new DOMException('push timed out', 'TimeoutError')),
        config.SENDER_TIMEOUT_MS,
      );
      const { signal } = abort;
      try {
        const url = pushUrl(address);
        const res = await request(url, {
          method: 'POST',
          dispatcher: agent,
          signal,
          body,
          headers: {
            'content-type': 'application/json',
            'user-agent': 'messenger-sender/1',
            ...webhookHeaders(secretKey, eventId, Math.floor(Date.now() / 1000), body),
          },
        });
        // Read and drop (small) bodies so the connection can be reused; a large one closes it.
        await res.body.dump({ limit: 64 * 1024, signal }).catch(() => {});
        const retryAfter = res.headers['retry-after'];
        return {
          answer: {
            kind: 'response',
            status: res.statusCode,
            retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
          },
          durationMs: ms(),
        };
      } catch (err) {
        const e = err as { code?: string; name?: string; message?: string };
        return {
          answer: { kind: 'error', errorClass: classify(err) },
          durationMs: ms(),
          error: `${e?.code ?? e?.name ?? 'Error'}: ${String(e?.message).slice(0, 200)}`,
        };
      } finally {
        clearTimeout(timer);
      }
    },
    close: () => agent.close(),
  };
}
