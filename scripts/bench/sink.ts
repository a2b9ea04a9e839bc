import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { nowMs } from './protocol.ts';

const MESSAGE_ID = /"message_id":"([^"]+)"/;
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** What the sinks saw during one phase. Arrivals are matched to sends by message id. */
class Arrivals {
  /** event id → [message id, first arrival epoch ms]. */
  readonly events = new Map<string, [string, number]>();
  posts = 0;
  duplicates = 0;
  badSignatures = 0;
  verified = 0;
  /** Arrival times of every POST (first copies and duplicates alike), for rates over a window. */
  readonly times: number[] = [];

  countBetween(from: number, to: number): number {
    let n = 0;
    for (const t of this.times) if (t >= from && t < to) n++;
    return n;
  }
}

export interface Sinks {
  /** The push address for a device: its own path on one of the sink servers. */
  addressFor(deviceId: string, i: number): string;
  origins: string[];
  arrivals: Arrivals;
  /** Starts a fresh record, e.g. per phase. */
  reset(): Arrivals;
  setPublicKey(raw: Uint8Array): void;
  close(): Promise<void>;
}

/**
 * Local push targets: plain node:http servers that answer 200 at once, record each event's first
 * arrival, count duplicates (same `webhook-id` twice) and verify the ed25519 signature of every
 * `verifyEvery`-th push (verifying all would make the sink the bottleneck on a small machine).
 */
export async function startSinks(count: number, verifyEvery: number): Promise<Sinks> {
  let arrivals = new Arrivals();
  let key: KeyObject | undefined;
  let seen = 0;
  const servers: Server[] = [];
  for (let i = 0; i < count; i++) {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const t = nowMs();
        res.writeHead(200, { 'content-length': '0' }).end();
        const a = arrivals;
        a.posts++;
        a.times.push(t);
        const id = req.headers['webhook-id'];
        if (typeof id !== 'string') return; // raw ceiling traffic carries no signature
        const body = Buffer.concat(chunks);
        if (a.events.has(id)) a.duplicates++;
        else a.events.set(id, [MESSAGE_ID.exec(body.toString('latin1'))?.[1] ?? '', t]);
        if (key && seen++ % verifyEvery === 0) {
          const ts = req.headers['webhook-timestamp'];
          const sig = String(req.headers['webhook-signature'] ?? '')
            .split(' ')
            .find((s) => s.startsWith('v1a,'));
          const signed = Buffer.concat([Buffer.from(`${id}.${ts}.`), body]);
          const ok = sig !== undefined && verify(null, signed, key, Buffer.from(sig.slice(4), 'base64'));
          if (ok) a.verified++;
          else a.badSignatures++;
        }
      });
    });
    server.keepAliveTimeout = 65_000;
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    servers.push(server);
  }
  const origins = servers.map((s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`);
  return {
    origins,
    addressFor: (deviceId, i) => `${origins[i % origins.length]}/push/${deviceId}?via=bench`,
    get arrivals() {
      return arrivals;
    },
    reset() {
      arrivals = new Arrivals();
      return arrivals;
    },
    setPublicKey(raw) {
      key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
    },
    async close() {
      for (const s of servers) {
        s.closeAllConnections();
        await new Promise((resolve) => s.close(resolve));
      }
    },
  };
}
