import { Writable } from 'node:stream';
import amqp, {
  type Channel,
  type ChannelModel,
  type ConfirmChannel,
  type ConsumeMessage,
  type Options,
} from 'amqplib';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import {
  type Links,
  REOPEN_MS,
  type SubscribeOptions,
  type Subscription,
  subscribe,
} from './subscription.ts';
import { declareTopology, type Topology, topology } from './topology.ts';

export type { Subscription } from './subscription.ts';

export interface Publication {
  exchange: string;
  routingKey: string;
  content: Buffer;
  options: Options.Publish;
}

/** Called per message; it must ack/nack on `ch` itself. A throw is logged and the message requeued. */
type Handler = (msg: ConsumeMessage, ch: Channel) => Promise<void>;

export interface Consumer {
  /** Stops taking new messages, waits for the handlers in flight, closes the channel. */
  stop(): Promise<void>;
}

export interface Broker {
  topology: Topology;
  /** Messages published so far (the `messenger_amqp_publishes_total` metric). */
  readonly stats: { published: number };
  /**
   * Publishes through a confirm channel; resolves once RabbitMQ confirmed every message (and
   * routed the mandatory ones), rejects otherwise — then any subset may have been delivered.
   * Fails at once while disconnected instead of waiting for the broker to come back.
   */
  publish(items: Publication[], timeoutMs?: number): Promise<void>;
  /** Consumes `queue` with `prefetch`, resubscribing after every reconnect. */
  consume(queue: string, prefetch: number, handler: Handler): Consumer;
  /**
   * A queue of this process's own (exclusive, auto-delete, server-named) with the given and the
   * later added bindings, consumed without acks. It is declared again and re-bound after every
   * reconnect; messages published meanwhile are lost, which onLost/onReady report.
   */
  subscribe(opts: SubscribeOptions): Subscription;
  /** Readiness probe: throws while the connection is down. */
  ready(): Promise<void>;
  /** Messages ready in each queue (metrics); a queue that does not exist counts 0. */
  queueDepths(queues: string[]): Promise<Record<string, number>>;
  close(): Promise<void>;
}

class Unroutable extends Error {}

/**
 * amqplib's muxer writes every frame to the socket on its own, and with noDelay each write is a
 * syscall and a packet: a relay batch's publishes, a sender's acks and a consumer's frames cost
 * one each. The socket is corked at a turn's first write and uncorked on the next tick, so what a
 * turn writes leaves in one writev; nothing waits for a timer. (The socket is amqplib's internal
 * `connection.stream`; if a later amqplib renames it, this does nothing.)
 */
function oneWritePerTurn(model: ChannelModel): void {
  const socket = (model.connection as { stream?: unknown }).stream;
  if (!(socket instanceof Writable)) return;
  const write = socket.write;
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  socket.write = function (this: Writable, ...args: Parameters<Writable['write']>) {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return write.apply(this, args);
  } as Writable['write'];
}

function withHeartbeat(url: string): string {
  // A dead peer behind a silent network is noticed after ~2 missed beats instead of the server's 60 s.
  return /[?&]heartbeat=/.test(url) ? url : `${url}${url.includes('?') ? '&' : '?'}heartbeat=15`;
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * One AMQP connection that reconnects by itself (amqplib recovery with backoff) and redeclares
 * the topology each time, so a broker restart never needs a process restart. Channels die with
 * their connection; they are recreated here on demand (publishing) or on reconnect (consumers).
 */
export async function connectBroker(
  config: Config,
  log: Logger,
  /** Shown by `rabbitmqctl list_connections client_properties`. */
  name = `${config.AMQP_PREFIX} ${process.pid}`,
): Promise<Broker> {
  const names = topology(config);
  let current: ChannelModel | null = null;
  let publisher: Promise<ConfirmChannel> | null = null;
  const returned = new Set<string>();
  const consumers = new Set<(model: ChannelModel) => void>();

  const conn = await amqp.connect(withHeartbeat(config.AMQP_URL), {
    // amqplib leaves Nagle on: a publish's or an ack's frames then waited for the broker's
    // delayed ACK (~40 ms here) before they went out.
    noDelay: true,
    clientProperties: { connection_name: name },
    recovery: {
      initialDelay: 200,
      maxDelay: 5_000,
      waitForConnect: false,
      async setup(model: ChannelModel) {
        const ch = await model.createChannel();
        try {
          await declareTopology(ch, config);
        } finally {
          await ch.close().catch(() => {});
        }
      },
    },
  });
  conn.on('error', (err) => log.warn({ err }, 'rabbitmq connection error'));
  conn.on('connect-failed', (err) => log.warn({ err: err.message }, 'rabbitmq connect failed'));
  const lost = new Set<() => void>();
  const links: Links = { current: () => current, connected: consumers, lost };
  conn.on('disconnect', (err) => {
    current = null;
    publisher = null;
    log.warn({ err: err.message }, 'rabbitmq disconnected, reconnecting');
    for (const drop of lost) drop();
  });
  conn.on('connect', (model: ChannelModel) => {
    oneWritePerTurn(model);
    current = model;
    log.info('rabbitmq connected');
    for (const start of consumers) start(model);
  });

  function confirmChannel(): Promise<ConfirmChannel> {
    const model = current;
    if (!model) return Promise.reject(new Error('rabbitmq is not connected'));
    if (publisher) return publisher;
    const opening = model.createConfirmChannel().then((ch) => {
      ch.on('error', (err) => log.warn({ err: err.message }, 'rabbitmq publish channel error'));
      ch.on('close', () => {
        if (publisher === opening) publisher = null;
      });
      ch.on('return', (msg: { properties: { messageId?: string } }) => {
        if (msg.properties.messageId) returned.add(msg.properties.messageId);
      });
      return ch;
    });
    opening.catch(() => {
      if (publisher === opening) publisher = null;
    });
    publisher = opening;
    return opening;
  }

  const stats = { published: 0 };
  return {
    topology: names,
    stats,

    async publish(items, timeoutMs = 10_000) {
      if (!items.length) return;
      const ch = await confirmChannel();
      stats.published += items.length;
      const confirms = items.map(
        (it) =>
          new Promise<void>((resolve, reject) => {
            ch.publish(it.exchange, it.routingKey, it.content, it.options, (err: unknown) =>
              err ? reject(err instanceof Error ? err : new Error('publish nacked')) : resolve(),
            );
          }),
      );
      await within(Promise.all(confirms), timeoutMs, 'publish confirm');
      // The broker sends basic.return before the confirm of an unroutable mandatory message.
      const lost = items.filter((it) => it.options.messageId && returned.delete(it.options.messageId));
      if (lost.length) throw new Unroutable(`${lost.length} message(s) unroutable`);
    },

    consume(queue, prefetch, handler) {
      let stopped = false;
      let channel: Channel | null = null;
      let tag: string | null = null;
      const inFlight = new Set<Promise<void>>();

      const start = (model: ChannelModel) => {
        if (stopped) return;
        void (async () => {
          const ch = await model.createChannel();
          ch.on('error', (err) => log.warn({ err: err.message, queue }, 'rabbitmq consumer channel error'));
          ch.on('close', () => {
            if (channel !== ch) return;
            channel = null;
            // A channel-level error leaves the connection up: resubscribe on it after a pause.
            if (!stopped && current === model) setTimeout(() => current === model && start(model), REOPEN_MS);
          });
          await ch.prefetch(prefetch);
          channel = ch;
          const ok = await ch.consume(queue, (msg) => {
            if (!msg) return; // cancelled by the broker (queue deleted); the close handler resubscribes
            const work = handler(msg, ch)
              .catch((err: unknown) => {
                log.error({ err, queue }, 'delivery handler failed');
                try {
                  ch.nack(msg, false, true);
                } catch {}
              })
              .finally(() => inFlight.delete(work));
            inFlight.add(work);
          });
          tag = ok.consumerTag;
        })().catch((err: unknown) => log.warn({ err, queue }, 'rabbitmq consume failed'));
      };
      consumers.add(start);
      if (current) start(current);

      return {
        async stop() {
          stopped = true;
          consumers.delete(start);
          const ch = channel;
          if (ch && tag) await ch.cancel(tag).catch(() => {});
          await Promise.allSettled([...inFlight]);
          channel = null;
          if (ch) await ch.close().catch(() => {});
        },
      };
    },

    subscribe(opts) {
      return subscribe(links, log, opts);
    },

    async ready() {
      if (!current) throw new Error('rabbitmq is not connected');
    },

    async queueDepths(queues) {
      const model = current;
      if (!model) throw new Error('rabbitmq is not connected');
      const depths: Record<string, number> = {};
      for (const q of queues) {
        // checkQueue on a missing queue closes its channel (404): one short-lived channel per queue.
        const ch = await model.createChannel();
        ch.on('error', () => {});
        depths[q] = await ch.checkQueue(q).then(
          (ok) => ok.messageCount,
          () => 0,
        );
        await ch.close().catch(() => {});
      }
      return depths;
    },

    async close() {
      const ch = publisher;
      publisher = null;
      if (ch) await (await ch.catch(() => null))?.close().catch(() => {});
      await conn.close();
    },
  };
}
