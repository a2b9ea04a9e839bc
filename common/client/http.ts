import { Agent, type Dispatcher, request } from 'undici';

/** Every non-2xx answer of the API, as one error class (`{error, message, details?}` plus extras). */
export class ApiError extends Error {
  readonly status: number;
  /** The snake_case code, e.g. `device_mismatch`, `not_found`. */
  readonly error: string;
  readonly details: unknown;
  /** The whole error body: 409 `device_mismatch` carries `missing_devices` / `extra_devices` here. */
  readonly body: Record<string, unknown>;
  /** Seconds from `Retry-After` on 429/503, when given. */
  readonly retryAfter: number | undefined;

  constructor(status: number, body: Record<string, unknown>, retryAfter?: number) {
    const error = typeof body.error === 'string' ? body.error : `http_${status}`;
    super(typeof body.message === 'string' ? body.message : `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.error = error;
    this.details = body.details;
    this.body = body;
    this.retryAfter = retryAfter;
  }
}

export interface ClientOptions {
  /** Where the API lives, e.g. `https://127.0.0.1:8443` (no `/api`). */
  baseUrl: string;
  /** Accept a self-signed certificate (local development only). */
  insecure?: boolean;
  /** Trust this CA (PEM), e.g. the local stack's own certificate: safer than `insecure`. */
  ca?: string | Buffer;
  /** An undici dispatcher of your own (proxy, mock-free test agent, connection limits). */
  dispatcher?: Dispatcher;
  /** Per-request timeout in ms (default 15 s). */
  timeoutMs?: number;
  /**
   * How often a request answered 429 or 503 is sent again (default 2). Both mean "nothing was
   * done", so any request may be repeated; the SDK waits `Retry-After` (1 s if absent) and gives
   * up with the ApiError when the server asks for more than `maxRetryWaitSec` (default 10).
   */
  retries?: number;
  maxRetryWaitSec?: number;
  userAgent?: string;
  /**
   * A file that keeps this device across runs: read when the client is made (a saved device of
   * the same user is resumed by `login`, keys and all) and rewritten (0600) after login and
   * logout. Without it every run's `login` registers one more device.
   */
  profile?: string;
}

export interface RequestOptions {
  body?: unknown;
  /** Raw bytes sent as `application/octet-stream` instead of JSON. */
  bytes?: Uint8Array;
  query?: Record<string, string | number | boolean | undefined>;
  /** Send the bearer token (default true when one is set). */
  auth?: boolean;
  headers?: Record<string, string>;
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Thin JSON-over-HTTP transport: bearer auth, coded errors, explicit timeouts. */
export class Http {
  readonly baseUrl: string;
  readonly dispatcher: Dispatcher | undefined;
  /** Whether self-signed certificates are accepted (also for the WebSocket stream). */
  readonly insecure: boolean;
  readonly ca: string | Buffer | undefined;
  token: string | null = null;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly maxRetryWaitSec: number;
  readonly userAgent: string;

  constructor(opts: ClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.insecure = opts.insecure ?? false;
    this.ca = opts.ca;
    this.dispatcher =
      opts.dispatcher ??
      (this.insecure || this.ca
        ? new Agent({ connect: this.insecure ? { rejectUnauthorized: false } : { ca: this.ca } })
        : undefined);
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    this.retries = opts.retries ?? 2;
    this.maxRetryWaitSec = opts.maxRetryWaitSec ?? 10;
    this.userAgent = opts.userAgent ?? 'messenger-sdk/0.1';
  }

  /** A JSON request; resolves to the parsed body (undefined for 204), rejects with ApiError. */
  async json<T>(method: Method, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.sendRetrying(method, path, opts);
    const text = await res.body.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** A request answered with raw bytes (file download). */
  async bytes(method: Method, path: string, opts: RequestOptions = {}): Promise<Uint8Array> {
    const res = await this.sendRetrying(method, path, opts);
    return new Uint8Array(await res.body.arrayBuffer());
  }

  /** Sends; a 429/503 is repeated after Retry-After (within bounds), other errors become ApiError. */
  private async sendRetrying(method: Method, path: string, opts: RequestOptions) {
    for (let attempt = 0; ; attempt++) {
      const res = await this.send(method, path, opts);
      if (res.statusCode < 400) return res;
      const err = errorOf(res.statusCode, await res.body.text(), res.headers['retry-after']);
      const wait = err.retryAfter ?? 1;
      const retryable = err.status === 429 || err.status === 503;
      if (!retryable || attempt >= this.retries || wait > this.maxRetryWaitSec) throw err;
      await new Promise((resolve) => setTimeout(resolve, wait * 1000));
    }
  }

  /** The ws(s):// URL of an API path. */
  wsUrl(path: string): string {
    return `${this.baseUrl.replace(/^http/, 'ws')}${path}`;
  }

  private send(method: Method, path: string, opts: RequestOptions) {
    const headers: Record<string, string> = { 'user-agent': this.userAgent, ...opts.headers };
    if (opts.auth !== false && this.token) headers.authorization = `Bearer ${this.token}`;
    let body: string | Buffer | null = null;
    if (opts.bytes) {
      body = Buffer.from(opts.bytes.buffer, opts.bytes.byteOffset, opts.bytes.byteLength);
      headers['content-type'] = 'application/octet-stream';
    } else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] = 'application/json';
    }
    const url = new URL(`${this.baseUrl}${path}`);
    for (const [k, v] of Object.entries(opts.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    return request(url, {
      method,
      headers,
      body,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      ...(this.dispatcher && { dispatcher: this.dispatcher }),
    });
  }
}

function errorOf(status: number, text: string, retryAfter: string | string[] | undefined): ApiError {
  let body: Record<string, unknown> = {
    error: `http_${status}`,
    message: text.slice(0, 200) || `HTTP ${status}`,
  };
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object') body = parsed as Record<string, unknown>;
  } catch {}
  const seconds = Number(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
  return new ApiError(status, body, Number.isFinite(seconds) ? seconds : undefined);
}
