import { setTimeout as sleep } from 'node:timers/promises';
import { type Dispatcher, request } from 'undici';

export interface ReadySample {
  /** URL, or `<url> <path>` for a target with its own path. */
  target: string;
  phase: string;
  status?: number;
  /** No answer (a killed listener refuses connections; a hang times out). */
  transport?: string;
  /** `error` of a 503 body. */
  code?: string;
  /** A non-2xx answer that is not `{error, message}` JSON. */
  badShape?: string;
}

export interface Target {
  url: string;
  dispatcher?: Dispatcher;
  /** Default /api/ready. */
  path?: string;
  token?: string;
}

/**
 * One GET (default /api/ready), bounded: it must answer even during an outage (no answer in 8 s
 * counts as a hang).
 */
async function ready(
  url: string,
  dispatcher?: Dispatcher,
  path = '/api/ready',
  token?: string,
): Promise<Omit<ReadySample, 'phase'>> {
  const target = path === '/api/ready' ? url : `${url} ${path}`;
  try {
    const res = await request(`${url}${path}`, {
      headersTimeout: 8_000,
      bodyTimeout: 8_000,
      ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
      ...(dispatcher ? { dispatcher } : {}),
    });
    const text = await res.body.text();
    let code: string | undefined;
    let badShape: string | undefined;
    try {
      const body = JSON.parse(text) as { error?: unknown; message?: unknown };
      if (typeof body.error === 'string') code = body.error;
      if (res.statusCode >= 300 && (typeof body.error !== 'string' || typeof body.message !== 'string'))
        badShape = text.slice(0, 120);
    } catch {
      badShape = text.slice(0, 120);
    }
    return { target, status: res.statusCode, ...(code ? { code } : {}), ...(badShape ? { badShape } : {}) };
  } catch (err) {
    const e = err as { code?: string; name?: string };
    return { target, transport: e.code ?? e.name ?? 'error' };
  }
}

/** Polls /api/ready of every target until `want(status)` holds for all; throws after `timeoutMs`. */
export async function readyUntil(
  targets: { url: string; dispatcher?: Dispatcher }[],
  want: (status: number | undefined) => boolean,
  timeoutMs: number,
  what: string,
): Promise<number> {
  const started = Date.now();
  const pending = new Set(targets);
  while (pending.size) {
    for (const t of [...pending]) if (want((await ready(t.url, t.dispatcher)).status)) pending.delete(t);
    if (!pending.size) break;
    if (Date.now() - started > timeoutMs) {
      throw new Error(`${what}: not seen within ${timeoutMs} ms on ${[...pending].map((t) => t.url)}`);
    }
    await sleep(100);
  }
  return Date.now() - started;
}

/** Samples each target every `everyMs` in the background, labelled by phase. */
export function sampleReadiness(
  targets: Target[],
  phase: () => string,
  everyMs = 500,
): { samples: ReadySample[]; stop(): Promise<void> } {
  const samples: ReadySample[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const now = phase();
      const got = await Promise.all(targets.map((t) => ready(t.url, t.dispatcher, t.path, t.token)));
      for (const g of got) samples.push({ ...g, phase: now });
      await sleep(everyMs);
    }
  })();
  return {
    samples,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}
