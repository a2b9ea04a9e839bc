import { z } from 'zod';
import { baseSchema, parseEnv } from '../../common/config.ts';

/**
 * What the native stack (`npm run stack`, scripts/stack.ts) reads besides the shared variables:
 * its processes and ports, and the edge's settings it writes into nginx's configuration (compose
 * passes the same names to nginx).
 */
const stackSchema = baseSchema.extend({
  /** Requests per second each client IP may make through nginx, and the burst it may run ahead. */
  RATE_LIMIT_PER_SECOND: z.coerce.number().int().min(1).default(100),
  RATE_LIMIT_BURST: z.coerce.number().int().min(0).default(1000),
  /** The stricter nginx zone for POST /api/users and POST /api/login, per client IP. */
  AUTH_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(60),
  AUTH_RATE_LIMIT_BURST: z.coerce.number().int().min(0).default(30),
  /** Open /api/stream WebSockets per client IP at nginx. */
  STREAM_CONNECTIONS_PER_IP: z.coerce.number().int().min(1).default(100),
  /** TLS certificate and key nginx serves; a self-signed pair is made when both are absent. */
  TLS_CERT_FILE: z.string().default('cert/certificate.pem'),
  TLS_KEY_FILE: z.string().default('cert/private_key.pem'),
  /** Native stack: HTTPS address of nginx. */
  HTTPS_HOST: z.string().default('127.0.0.1'),
  HTTPS_PORT: z.coerce.number().int().min(1).max(65535).default(8443),
  /** Native stack: listener and sender processes, listener i on LISTENER_BASE_PORT+i. */
  LISTENERS: z.coerce.number().int().min(1).max(64).default(2),
  SENDERS: z.coerce.number().int().min(0).max(64).default(1),
  LISTENER_BASE_PORT: z.coerce.number().int().min(1).max(65535).default(3001),
  /** Native stack: process k (listeners first, then senders) gets METRICS_PORT=METRICS_BASE_PORT+k. */
  METRICS_BASE_PORT: z.coerce.number().int().min(1).max(65535).default(9100),
  /** Native stack: PID files, logs, nginx config and temp files. */
  STACK_RUN_DIR: z.string().default('run'),
  NGINX_BIN: z.string().default('nginx'),
  /** Native stack: `auto` reuses running PostgreSQL/RabbitMQ or starts (and on stop stops) the local ones; `external` only reuses. */
  STACK_SERVICES: z.enum(['auto', 'external']).default('auto'),
  /** Native stack: `auto` installs missing nginx/openssl/PostgreSQL/RabbitMQ with apt-get when root; `never` only names them. */
  STACK_INSTALL: z.enum(['auto', 'never']).default('auto'),
});

export type StackConfig = z.output<typeof stackSchema>;

export function loadStackConfig(env?: NodeJS.ProcessEnv): StackConfig {
  return parseEnv(stackSchema, env);
}
