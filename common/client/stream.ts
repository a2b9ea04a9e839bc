import type WebSocket from 'ws';
import { ack, openEvent, type Received } from './messages.ts';
import type { Session } from './session.ts';
import { liveSocket, type SocketOptions } from './socket.ts';
import type { Event } from './types.ts';

export interface StreamOptions extends SocketOptions {
  /** Acknowledge events once the loop body has handled them (default true). */
  autoAck?: boolean;
}

/** Acks are batched: at the latest every this many handled events, and whenever the queue runs dry. */
const ACK_EVERY = 100;

/**
 * Live events of this device over the WebSocket stream, decrypted. The server starts every
 * connection with the backlog from the inbox, so after a reconnect nothing is lost; events
 * already handled (seq at or below the last one seen) are skipped. An event is acknowledged
 * once the loop body has handled it: when the body returns, or when it leaves the loop (`break`,
 * `return`, a throw) — the event in hand when the loop is left counts as handled and does not
 * come again (acked over HTTP before the iterator ends). Only a process that dies inside the
 * body gets that event again. For a body that may fail, catch inside it, or pass
 * `autoAck: false` and `ack(seq)` yourself.
 */
export async function* stream(s: Session, opts: StreamOptions = {}): AsyncGenerator<Received> {
  let ws: WebSocket | null = null;
  /** The highest seq handed to the loop body, and the highest taken from a socket. */
  let lastSeen = 0;
  let lastQueued = 0;
  /** The event the loop body is handling; counts as handled if the loop is left while it runs. */
  let inHand = 0;
  let acked = 0;
  const sendAck = () => {
    if (opts.autoAck === false || lastSeen <= acked || ws?.readyState !== 1) return;
    ws.send(JSON.stringify({ type: 'ack', up_to: lastSeen }));
    acked = lastSeen;
  };
  const events = liveSocket<Event>(s, opts, {
    connecting(socket) {
      ws = socket;
    },
    // Each connection starts with the backlog: what was seen or is queued already is skipped.
    frame(frame, emit) {
      const event = frame.event as Event | undefined;
      if (frame.type !== 'event' || !event || event.seq <= Math.max(lastSeen, lastQueued)) return;
      lastQueued = event.seq;
      emit(event);
    },
    idle: sendAck,
  });
  try {
    let sinceAck = 0;
    for await (const next of events) {
      inHand = next.seq;
      yield openEvent(s, next);
      lastSeen = Math.max(lastSeen, next.seq);
      if (++sinceAck >= ACK_EVERY) {
        sendAck();
        sinceAck = 0;
      }
    }
  } finally {
    lastSeen = Math.max(lastSeen, inHand);
    // The socket may close before the server applied a last ack frame: confirm it over HTTP.
    if (opts.autoAck !== false && lastSeen > 0) await ack(s, lastSeen).catch(() => {});
  }
}
