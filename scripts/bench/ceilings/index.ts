import { join } from 'node:path';
import nacl from 'tweetnacl';
import { envelope, sendBody } from '../payload.ts';
import type { Progress } from '../progress.ts';
import type { Sinks } from '../sink.ts';
import { round } from '../stats.ts';
import { nginxCeiling } from './nginx.ts';
import { postgresCeiling } from './postgres.ts';
import { rabbitCeiling } from './rabbitmq.ts';
import { sinkCeiling } from './sink.ts';
import { findWrk, type HttpTool } from './wrk.ts';

export interface Ceilings {
  /** Send transactions committed per second, directly with pg. */
  postgres: number;
  /** Confirmed persistent publishes per second. */
  rabbitmq: number;
  /** HTTPS requests per second through nginx to a trivial upstream. */
  nginx: number;
  /** Push-sized POSTs per second into a local sink. */
  sink: number;
  /** Which program measured each ceiling. */
  tools: { postgres: 'pg'; rabbitmq: 'amqplib'; nginx: HttpTool; sink: HttpTool };
}

/** `auto`: wrk for the HTTP ceilings when it is installed, else the Node load generator. */
export type HttpToolChoice = 'auto' | HttpTool;

export interface CeilingOptions {
  databaseUrl: string;
  amqpUrl: string;
  durationMs: number;
  /** Concurrent connections for the HTTP ceilings (the closed loop's concurrency). */
  connections: number;
  queueArguments: Record<string, unknown>;
  /** Scratch directory (throwaway nginx config, certificate, logs). */
  runDir: string;
  httpTool: HttpToolChoice;
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
  const wrk = opts.httpTool === 'node' ? undefined : await findWrk();
  if (opts.httpTool === 'wrk' && !wrk)
    throw new Error('--ceiling-tool wrk: wrk is not installed (apt-get install -y wrk)');
  if (!wrk && opts.httpTool === 'auto')
    progress.log(
      'raw: wrk not found (apt-get install -y wrk): the Node load generator measures the HTTP ceilings',
    );
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
    wrk,
  });
  progress.log(`raw: nginx ${round(nginx.perSec)} req/s (${nginx.errors} errors, ${nginx.tool})`);
  progress.update('raw: sink POSTs …');
  sinks.reset();
  const sink = await sinkCeiling({
    origin: sinks.origins[0] ?? '',
    connections: opts.connections,
    durationMs: opts.durationMs,
    wrk,
    scratchDir: join(opts.runDir, 'raw-sink'),
  });
  sinks.reset();
  progress.log(`raw: sink ${round(sink.perSec)} POST/s (${sink.errors} errors, ${sink.tool})`);
  return {
    postgres,
    rabbitmq,
    nginx: nginx.perSec,
    sink: sink.perSec,
    tools: { postgres: 'pg', rabbitmq: 'amqplib', nginx: nginx.tool, sink: sink.tool },
  };
}
