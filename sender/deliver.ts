import { Agent, type Dispatcher } from 'undici';
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

/** Bytes of an answer's body read (and dropped) before the connection is closed instead. */
const ANSWER_BODY_MAX = 64 * 1024;

/**
 * One POST through the agent's pool, by undici's handler API: no response stream, promise or
 * AbortSignal per push as `request()` makes (a quarter of a sender's CPU profile was undici).
 * Resolves with the status once the answer is read; an answer whose body is larger than
 * ANSWER_BODY_MAX, or that does not end within `timeoutMs` of the start, still counts as
 * answered (its connection is closed). Rejects when no status arrived in time or at all.
 */
function post(
  agent: Agent,
  url: URL,
  body: string,
  timeoutMs: number,
  headers: Record<string, string>,
): Promise<{ status: number; retryAfter?: string | undefined }> {
  return new Promise((resolve, reject) => {
    let controller: Dispatcher.DispatchController | undefined;
    let answer: { status: number; retryAfter?: string | undefined } | undefined;
    let read = 0;
    let expired = false;
    const timedOut = () => new DOMException('push timed out', 'TimeoutError');
    const timer = setTimeout(() => {
      expired = true;
      controller?.abort(timedOut());
    }, timeoutMs);
    const settle = (err?: Error) => {
      clearTimeout(timer);
      if (answer) resolve(answer);
      else reject(err ?? new Error('no answer'));
    };
    agent.dispatch(
      { origin: url.origin, path: `${url.pathname}${url.search}`, method: 'POST', headers, body },
      {
        onRequestStart(c) {
          controller = c;
          // Waited for a connection longer than the whole push may take.
          if (expired) c.abort(timedOut());
        },
        onResponseStart(_c, statusCode, resHeaders) {
          if (statusCode < 200) return;
          const retryAfter = resHeaders['retry-after'];
          answer = { status: statusCode, retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter };
        },
        onResponseData(c, chunk) {
          read += chunk.length;
          if (read > ANSWER_BODY_MAX) c.abort(new Error('answer body too large'));
        },
        onResponseEnd: () => settle(),
        onResponseError: (_c, err) => settle(err),
      },
    );
  });
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
      try {
        const answer = await post(agent, pushUrl(address), body, config.SENDER_TIMEOUT_MS, {
          'content-type': 'application/json',
          'user-agent': 'messenger-sender/1',
          ...webhookHeaders(secretKey, eventId, Math.floor(Date.now() / 1000), body),
        });
        return { answer: { kind: 'response', ...answer }, durationMs: ms() };
      } catch (err) {
        const e = err as { code?: string; name?: string; message?: string };
        return {
          answer: { kind: 'error', errorClass: classify(err) },
          durationMs: ms(),
          error: `${e?.code ?? e?.name ?? 'Error'}: ${String(e?.message).slice(0, 200)}`,
        };
      }
    },
    close: () => agent.close(),
  };
}
