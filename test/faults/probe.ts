import { setTimeout as sleep } from 'node:timers/promises';
import { type Dispatcher, request } from 'undici';

export interface ReadySample {
  target: string;
  phase: string;
  status?: number;
  /** No answer (a killed listener refuses connections; a hang times out). */
  transport?: string;
  /** `error` of a 503 body. */
  code?: string;
}

/** One GET /api/ready, bounded: a readiness probe must answer, even during an outage (no answer in 8 s = a hang). */
export async function ready(url: string, dispatcher?: Dispatcher): Promise<Omit<ReadySample, 'phase'>> {
  try {
    const res = await request(`${url}/api/ready`, {
      headersTimeout: 8_000,
      bodyTimeout: 8_000,
      ...(dispatcher ? { dispatcher } : {}),
    });
    const text = await res.body.text();
    let code: string | undefined;
    try {
      code = (JSON.parse(text) as { error?: string }).error;
    } catch {}
    return { target: url, status: res.statusCode, ...(code ? { code } : {}) };
  } catch (err) {
    const e = err as { code?: string; name?: string };
    return { target: url, transport: e.code ?? e.name ?? 'error' };
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

/** Samples /api/ready of each target every `everyMs` in the background, labelled by phase. */
export function sampleReadiness(
  targets: { url: string; dispatcher?: Dispatcher }[],
  phase: () => string,
  everyMs = 500,
): { samples: ReadySample[]; stop(): Promise<void> } {
  const samples: ReadySample[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const now = phase();
      const got = await Promise.all(targets.map((t) => ready(t.url, t.dispatcher)));
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
