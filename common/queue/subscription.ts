import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { Logger } from '../log.ts';

/** A consumer channel closed by a channel-level error is reopened on the same connection after this. */
export const REOPEN_MS = 1_000;

interface Binding {
  exchange: string;
  routingKey: string;
}

export interface SubscribeOptions {
  /** Bound for the subscription's whole life (e.g. a fanout exchange). */
  bindings: Binding[];
  /** Every message, unacknowledged (noAck): a subscription carries hints, never work. */
  onMessage(msg: ConsumeMessage): void;
  /** The queue exists and every binding is in place again (first time and after each loss). */
  onReady(): void;
  /** The queue is gone (connection or channel lost): messages are being missed until onReady. */
  onLost(): void;
}

export interface Subscription {
  /** True between onReady and onLost. */
  readonly ready: boolean;
  /** Adds a binding, kept across reconnects; resolves once in place (at once while not ready). */
  bind(exchange: string, routingKey: string): Promise<void>;
  /** Removes a binding; resolves once done (at once while not ready). */
  unbind(exchange: string, routingKey: string): Promise<void>;
  /** Deletes the queue (closes its channel); no more callbacks. */
  stop(): Promise<void>;
}

/** What a subscription needs of the broker's one connection (see connectBroker). */
export interface Links {
  /** The connection while it is up. */
  current(): ChannelModel | null;
  /** Called with the connection each time it comes (back) up. */
  connected: Set<(model: ChannelModel) => void>;
  /** Called each time it goes down. */
  lost: Set<() => void>;
}

/**
 * Broker.subscribe on the broker's connection: an exclusive, auto-delete queue on a channel of its
 * own, declared, consumed and bound again each time the connection (or the channel) comes back.
 */
export function subscribe(links: Links, log: Logger, opts: SubscribeOptions): Subscription {
  const { connected, lost } = links;
  const key = (exchange: string, routingKey: string) => `${exchange}\u0000${routingKey}`;
  const extra = new Map<string, Binding>();
  let stopped = false;
  let channel: Channel | null = null;
  let queue: string | null = null;

  const down = (ch: Channel) => {
    if (channel !== ch) return;
    const wasReady = queue !== null;
    channel = null;
    queue = null;
    if (wasReady && !stopped) opts.onLost();
  };
  const start = (model: ChannelModel) => {
    if (stopped) return;
    void (async () => {
      const ch = await model.createChannel();
      if (stopped) return void ch.close().catch(() => {});
      ch.on('error', (err) => log.warn({ err: err.message }, 'rabbitmq subscription channel error'));
      ch.on('close', () => {
        const mine = channel === ch;
        down(ch);
        // A failed binding closes the channel and leaves the connection up: start again on it.
        if (mine && !stopped && links.current() === model)
          setTimeout(() => links.current() === model && start(model), REOPEN_MS);
      });
      channel = ch;
      const ok = await ch.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
      // Consuming first: a channel that fails from here on cancels the consumer, which deletes the
      // auto-delete queue (an exclusive queue never consumed would live as long as the connection).
      await ch.consume(
        ok.queue,
        // null: the broker cancelled the consumer; closing the channel starts again.
        (msg) => (msg ? opts.onMessage(msg) : void ch.close().catch(() => {})),
        { noAck: true },
      );
      // Until `queue` is set, bind() only records: take what it recorded while binding, too.
      const bound = new Set<string>();
      for (;;) {
        const todo = [...opts.bindings, ...extra.values()].filter(
          (b) => !bound.has(key(b.exchange, b.routingKey)),
        );
        if (!todo.length) break;
        await Promise.all(todo.map((b) => ch.bindQueue(ok.queue, b.exchange, b.routingKey)));
        for (const b of todo) bound.add(key(b.exchange, b.routingKey));
      }
      if (stopped || channel !== ch) return;
      queue = ok.queue;
      opts.onReady();
    })().catch((err: unknown) => {
      if (!stopped) log.warn({ err }, 'rabbitmq subscribe failed');
    });
  };
  // The connection's 'disconnect' comes before (or without) the channel's 'close'.
  const onDisconnect = () => channel && down(channel);
  connected.add(start);
  lost.add(onDisconnect);
  const now = links.current();
  if (now) start(now);

  async function change(b: Binding, on: boolean): Promise<void> {
    const ch = channel;
    const q = queue;
    if (!ch || !q) return; // bound on the next start, which reports onReady
    try {
      if (on) await ch.bindQueue(q, b.exchange, b.routingKey);
      else await ch.unbindQueue(q, b.exchange, b.routingKey);
    } catch (err) {
      // The failed operation closed the channel; the close handler starts again and re-binds.
      log.warn({ err, exchange: b.exchange, routing_key: b.routingKey }, 'rabbitmq binding failed');
    }
  }

  return {
    get ready() {
      return queue !== null;
    },
    bind(exchange, routingKey) {
      const b = { exchange, routingKey };
      extra.set(key(exchange, routingKey), b);
      // Channel operations run in the order they are issued, so a bind issued after an unbind wins.
      return change(b, true);
    },
    unbind(exchange, routingKey) {
      if (!extra.delete(key(exchange, routingKey))) return Promise.resolve();
      return change({ exchange, routingKey }, false);
    },
    async stop() {
      stopped = true;
      connected.delete(start);
      lost.delete(onDisconnect);
      const ch = channel;
      channel = null;
      queue = null;
      // Closing the channel deletes the exclusive auto-delete queue with it.
      if (ch) await ch.close().catch(() => {});
    },
  };
}
