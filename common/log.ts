import { type Logger, pino } from 'pino';

export type { Logger };

/** Structured JSON logs; anything that could carry a secret is redacted as a last line of defence. */
export function createLogger(level: string, name: string): Logger {
  return pino({
    name,
    level,
    base: { pid: process.pid, service: name },
    redact: {
      paths: ['password', 'token', 'authorization', '*.password', '*.token', 'req.headers.authorization'],
      censor: '[redacted]',
    },
  });
}

/**
 * Node prints process warnings (deprecations, MaxListeners…) as plain text on stderr, which
 * breaks a one-JSON-object-per-line log: a process's main sends them to its logger instead.
 */
export function logProcessWarnings(log: Logger): void {
  process.removeAllListeners('warning');
  process.on('warning', (warning) => log.warn({ err: warning }, 'process warning'));
}
