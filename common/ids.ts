import { randomFillSync } from 'node:crypto';
import { V7Generator } from 'uuidv7';

/**
 * The random words uuidv7 asks for, from one pool refilled 4 KiB at a time: its default source
 * calls crypto.getRandomValues for every 8 words, and webcrypto's per-call overhead showed as ~2 %
 * of a listener's CPU profile (two ids per message).
 */
const pool = new Uint32Array(1024);
let next = pool.length;
const generator = new V7Generator({
  nextUint32() {
    if (next === pool.length) {
      randomFillSync(pool);
      next = 0;
    }
    return pool[next++] as number;
  },
});

/** A time-ordered id (UUIDv7, monotonic within a millisecond): inserts into its indexes stay local. */
export function newId(): string {
  return generator.generate().toString();
}
