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
