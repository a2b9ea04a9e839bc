import type { Channel, ConsumeMessage } from 'amqplib';

interface Pending {
  msg: ConsumeMessage;
  done: boolean;
}

export interface Acker {
  /** A delivery arrived on `ch`: call before anything else is done with it. */
  received(ch: Channel, msg: ConsumeMessage): void;
  /** Its outcome is recorded: ack it (soon, possibly together with others). */
  ack(ch: Channel, msg: ConsumeMessage): void;
  /** It is nacked (requeued) by the caller: stop tracking it. */
  forget(ch: Channel, msg: ConsumeMessage): void;
}

/**
 * Acks each channel's deliveries with as few frames as possible. Once per turn of the event loop,
 * the longest run of finished deliveries from the oldest one on is acked by ONE `multiple` ack
 * (tags grow per channel, so that ack covers exactly them); a finished delivery behind one still
 * in flight is acked alone, so a slow push never holds the others' prefetch slots. `frames`
 * counts the ack frames sent.
 */
export function createAcker(frames: (n: number) => void = () => {}): Acker {
  const channels = new Map<Channel, Pending[]>();
  let scheduled = false;

  function flush(): void {
    scheduled = false;
    for (const [ch, list] of channels) {
      let run = 0;
      while (run < list.length && list[run]?.done) run++;
      const rest = list.slice(run).filter((p) => !p.done);
      try {
        const last = list[run - 1];
        if (last) {
          ch.ack(last.msg, true);
          frames(1);
        }
        for (const p of list.slice(run)) {
          if (!p.done) continue;
          ch.ack(p.msg);
          frames(1);
        }
      } catch {
        // The channel closed: the broker redelivers what it had not got an ack for.
        channels.delete(ch);
        continue;
      }
      if (rest.length) channels.set(ch, rest);
      else channels.delete(ch);
    }
  }

  return {
    received(ch, msg) {
      const list = channels.get(ch) ?? [];
      list.push({ msg, done: false });
      channels.set(ch, list);
    },
    ack(ch, msg) {
      const p = channels.get(ch)?.find((x) => x.msg === msg);
      if (!p) return;
      p.done = true;
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    forget(ch, msg) {
      const list = channels.get(ch);
      if (list)
        channels.set(
          ch,
          list.filter((x) => x.msg !== msg),
        );
    },
  };
}
