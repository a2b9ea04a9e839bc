import { type Dispatcher, request } from 'undici';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON shapes and assert on them
export interface Reply<T = any> {
  status: number;
  body: T;
  headers: Record<string, string | string[] | undefined>;
}

export interface CallOptions {
  token?: string;
  body?: unknown;
  /** Sent verbatim instead of JSON-encoding `body`. */
  raw?: string | Buffer;
  headers?: Record<string, string>;
}

/** Raw HTTP against the API, returning parsed JSON (or text) with status and headers. */
export function client(base: string, dispatcher?: Dispatcher) {
  return async function call(method: string, path: string, opts: CallOptions = {}): Promise<Reply> {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let body: string | Buffer | undefined = opts.raw;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await request(`${base}${path}`, {
      method: method as 'GET',
      headers,
      body: body ?? null,
      ...(dispatcher ? { dispatcher } : {}),
    });
    const text = await res.body.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {}
    return { status: res.statusCode, body: parsed, headers: res.headers };
  };
}

export type Call = ReturnType<typeof client>;
