import { type Logger, pino } from 'pino';

export type { Logger };

/**
 * Structured JSON logs; anything that could carry a secret is redacted as a last line of defence.
 * `async` (the listener and sender processes) writes stdout off the request path, in the
 * background, instead of one blocking write per line; pino flushes it when the process exits
 * (a SIGKILL may lose the last lines).
 */
export function createLogger(level: string, name: string, opts: { async?: boolean } = {}): Logger {
  return pino(
    {
      name,
      level,
      base: { pid: process.pid, service: name },
      redact: {
        paths: ['password', 'token', 'authorization', '*.password', '*.token', 'req.headers.authorization'],
        censor: '[redacted]',
      },
    },
    opts.async ? pino.destination({ dest: 1, sync: false }) : undefined,
  );
}

/**
 * Node prints process warnings (deprecations, MaxListeners…) as plain text on stderr, which
 * breaks a one-JSON-object-per-line log: a process's main sends them to its logger instead.
 */
export function logProcessWarnings(log: Logger): void {
  process.removeAllListeners('warning');
  process.on('warning', (warning) => log.warn({ err: warning }, 'process warning'));
}

/**
 * A child logger made on first use, with fields added until then. pino serialises a child's
 * fields when it is made, and most requests and deliveries log nothing: a child for each showed
 * as ~3 % of a listener's CPU profile.
 */
export class LazyChild {
  #made: Logger | undefined;
  readonly #parent: Logger;
  readonly #fields: Record<string, unknown>;
  constructor(parent: Logger, fields: Record<string, unknown>) {
    this.#parent = parent;
    this.#fields = fields;
  }

  get log(): Logger {
    this.#made ??= this.#parent.child(this.#fields);
    return this.#made;
  }

  /** A debug line, without making the logger when debug is off (the usual case). */
  debug(obj: object, msg: string): void {
    if (this.#parent.isLevelEnabled('debug')) this.log.debug(obj, msg);
  }

  warn(obj: object, msg: string): void {
    this.log.warn(obj, msg);
  }

  bind(fields: Record<string, unknown>): void {
    if (this.#made) this.#made = this.#made.child(fields);
    else Object.assign(this.#fields, fields);
  }
}
