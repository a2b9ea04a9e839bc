import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Dispatcher, request } from 'undici';
import type { Device } from '../helpers/people.ts';
import type { Boxes, World } from './world.ts';

/** One HTTP exchange of a send: an answer (status, error code) or a transport error. */
interface Attempt {
  /** Date.now() when the request was sent and when its answer (or error) came. */
  at: number;
  end: number;
  status?: number;
  /** `error` of a JSON error body. */
  code?: string;
  /** Set when a non-2xx answer is not `{error: string, message: string, …}` JSON. */
  badShape?: string;
  /** undici/node error code when no answer came (timeout, reset, refused). */
  transport?: string;
  /** X-Served-By: a listener answered (absent: nginx answered on its own). */
  servedBy?: string;
  messageId?: string;
}

export type Outcome = 'acked' | 'rejected' | 'in_doubt';

export interface SendRecord {
  cmid: string;
  /** The fault phase the first attempt started in. */
  phase: string;
  from: Device;
  receivers: Device[];
  /** Patient clients retry through an outage; impatient ones give up after the first failure. */
  patient: boolean;
  attempts: Attempt[];
  outcome: Outcome;
  messageId?: string;
}

export interface DriveOptions {
  base: string;
  dispatcher: Dispatcher;
  world: World;
  boxes: Boxes;
  ratePerSecond: number;
  maxMessages: number;
  /** Polled before each send: the load ends when it returns true (or maxMessages are sent). */
  done(): boolean;
  phase(): string;
  maxInFlight?: number;
  timeoutMs?: number;
}

const PATIENT_ATTEMPTS = 8;
/**
 * Impatient clients do not retry at all: with two attempts, the second one (after Retry-After: 1)
 * often landed after PostgreSQL was back, so a run could end with no rejected send at all and the
 * "no rejected message is delivered" check had nothing to judge (seen once in a full run).
 */
const IMPATIENT_ATTEMPTS = 1;
const IMPATIENT_EVERY = 8;

/** The answer may have been produced after the listener stored the message (or nobody knows). */
function ambiguous(a: Attempt): boolean {
  return a.transport !== undefined || a.status === 502 || a.status === 504 || (a.status ?? 0) >= 600;
}

function retryable(a: Attempt): boolean {
  return a.transport !== undefined || a.status === 429 || a.status === 408 || (a.status ?? 0) >= 500;
}

function shapeProblem(status: number, text: string): string | undefined {
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown };
    if (typeof body?.error === 'string' && typeof body.message === 'string') return undefined;
  } catch {}
  return `${status} ${text.slice(0, 120)}`;
}

async function attempt(
  opts: DriveOptions,
  from: Device,
  body: string,
): Promise<Attempt & { retryAfterMs?: number }> {
  const at = Date.now();
  try {
    const res = await request(`${opts.base}/api/messages`, {
      method: 'POST',
      dispatcher: opts.dispatcher,
      headers: { authorization: `Bearer ${from.token}`, 'content-type': 'application/json' },
      body,
      headersTimeout: opts.timeoutMs ?? 10_000,
      bodyTimeout: opts.timeoutMs ?? 10_000,
    });
    const text = await res.body.text();
    const servedBy = res.headers['x-served-by'];
    const a: Attempt & { retryAfterMs?: number } = { at, end: Date.now(), status: res.statusCode };
    if (typeof servedBy === 'string') a.servedBy = servedBy;
    if (res.statusCode < 300) {
      a.messageId = (JSON.parse(text) as { message_id: string }).message_id;
      return a;
    }
    const problem = shapeProblem(res.statusCode, text);
    if (problem) a.badShape = problem;
    else a.code = (JSON.parse(text) as { error: string }).error;
    const ra = Number(res.headers['retry-after']);
    if (Number.isFinite(ra) && ra > 0) a.retryAfterMs = ra * 1000;
    return a;
  } catch (err) {
    const e = err as { code?: string; cause?: { code?: string }; name?: string };
    return { at, end: Date.now(), transport: e.code ?? e.cause?.code ?? e.name ?? 'error' };
  }
}

/** Sends one message, retrying with the same client_message_id, and records what happened. */
async function sendOne(opts: DriveOptions, rec: SendRecord, to: string): Promise<void> {
  const text = JSON.stringify({ cmid: rec.cmid });
  const limit = rec.patient ? PATIENT_ATTEMPTS : IMPATIENT_ATTEMPTS;
  for (let n = 1; n <= limit; n++) {
    // Fresh envelopes each time, as a real client re-encrypting on retry would send.
    const envelopes = rec.receivers.map((d) => opts.boxes.seal(rec.from, d, text));
    const a = await attempt(opts, rec.from, JSON.stringify({ to, client_message_id: rec.cmid, envelopes }));
    const { retryAfterMs, ...kept } = a;
    rec.attempts.push(kept);
    if (a.messageId) {
      rec.outcome = 'acked';
      rec.messageId = a.messageId;
      return;
    }
    if (!retryable(a) || n === limit) break;
    const backoff = Math.min(3_000, 250 * 2 ** (n - 1)) * (0.8 + Math.random() * 0.4);
    await sleep(Math.min(3_000, Math.max(backoff, retryAfterMs ?? 0)));
  }
  rec.outcome = rec.attempts.some(ambiguous) ? 'in_doubt' : 'rejected';
}

/**
 * An open-loop stream of sends at `ratePerSecond` (bounded in flight), round-robin over the
 * sending devices and the recipient users, until `done()` or `maxMessages`.
 */
export async function drive(opts: DriveOptions): Promise<SendRecord[]> {
  const { world } = opts;
  const records: SendRecord[] = [];
  const inFlight = new Set<Promise<void>>();
  const interval = 1000 / opts.ratePerSecond;
  let due = Date.now();
  for (let k = 0; k < opts.maxMessages && !opts.done(); k++) {
    if (due > Date.now()) await sleep(due - Date.now());
    while (inFlight.size >= (opts.maxInFlight ?? 64)) await Promise.race(inFlight);
    // A stall (in-flight cap reached) is not made up for with a burst afterwards.
    due = Math.max(due + interval, Date.now() - 500);
    const from = world.senders[k % world.senders.length] as Device;
    const target = world.recipients[Math.floor(k / world.senders.length) % world.recipients.length];
    if (!target) throw new Error('no recipients');
    const own = world.ownOther.get(from.deviceId);
    const rec: SendRecord = {
      cmid: randomUUID(),
      phase: opts.phase(),
      from,
      receivers: [...target.devices, ...(own ? [own] : [])],
      patient: k % IMPATIENT_EVERY !== IMPATIENT_EVERY - 1,
      attempts: [],
      outcome: 'rejected',
    };
    records.push(rec);
    const p: Promise<void> = sendOne(opts, rec, target.username).finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  await Promise.all(inFlight);
  return records;
}
