import nacl from 'tweetnacl';
import { runLoad } from '../load.ts';
import { envelope, eventJson, sendBody } from '../payload.ts';
import type { Progress } from '../progress.ts';
import type { Sinks } from '../sink.ts';
import { round } from '../stats.ts';
import { nginxCeiling } from './nginx.ts';
import { postgresCeiling } from './postgres.ts';
import { rabbitCeiling } from './rabbitmq.ts';

export interface Ceilings {
  /** Send transactions committed per second, directly with pg. */
  postgres: number;
  /** Confirmed persistent publishes per second. */
  rabbitmq: number;
  /** HTTPS requests per second through nginx to a trivial upstream. */
  nginx: number;
  /** Push-sized POSTs per second into a local sink. */
  sink: number;
}

export interface CeilingOptions {
  databaseUrl: string;
  amqpUrl: string;
  durationMs: number;
  /** Concurrent connections for the HTTP ceilings (the closed loop's concurrency). */
  connections: number;
  queueArguments: Record<string, unknown>;
  /** Scratch directory (throwaway nginx config, certificate, logs). */
  runDir: string;
}

/** This machine's raw ceilings, each stage alone, measured with the same 1 KiB message. */
export async function measureCeilings(
  opts: CeilingOptions,
  sinks: Sinks,
  progress: Progress,
): Promise<Ceilings> {
  progress.update('raw: postgres send statement …');
  const postgres = await postgresCeiling(opts.databaseUrl, { connections: 8, durationMs: opts.durationMs });
  progress.log(`raw: postgres ${round(postgres)} commits/s`);
  progress.update('raw: rabbitmq confirmed publishes …');
  const rabbitmq = await rabbitCeiling(opts.amqpUrl, {
    channels: 4,
    window: 256,
    durationMs: opts.durationMs,
    queueArguments: opts.queueArguments,
  });
  progress.log(`raw: rabbitmq ${round(rabbitmq)} confirmed publishes/s`);
  progress.update('raw: nginx TLS proxy …');
  const pair = nacl.box.keyPair();
  const body = sendBody(
    'bench_peer',
    envelope(pair, {
      device_id: crypto.randomUUID(),
      public_key: Buffer.from(pair.publicKey).toString('base64'),
    }),
  );
  const nginx = await nginxCeiling({
    runDir: opts.runDir,
    connections: opts.connections,
    durationMs: opts.durationMs,
    body,
  });
  progress.log(`raw: nginx ${round(nginx.perSec)} req/s (${nginx.errors} errors)`);
  progress.update('raw: sink POSTs …');
  sinks.reset();
  const origin = sinks.origins[0] ?? '';
  const r = await runLoad(
    {
      origin,
      requests: [
        {
          method: 'POST',
          path: '/push/raw',
          headers: { 'content-type': 'application/json' },
          body: eventJson(),
        },
      ],
      connections: opts.connections,
      recordMessageIds: false,
    },
    { kind: 'closed', concurrency: opts.connections, durationMs: opts.durationMs },
  );
  const sink = (r.ok * 1000) / (r.endedAt - r.startedAt);
  sinks.reset();
  progress.log(`raw: sink ${round(sink)} POST/s`);
  return { postgres, rabbitmq, nginx: nginx.perSec, sink };
}
