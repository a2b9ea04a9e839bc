import { z } from 'zod';

/** A yes/no variable: `true`/`1` or `false`/`0`. */
export const envBool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
/** A comma-separated list, blanks dropped. */
export const envList = z.string().transform((v) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);

/**
 * The variables both processes read (the pool, RabbitMQ and its topology, the signing key). Each
 * process extends this with its own (listener/config.ts, sender/config.ts), the native stack and
 * the CLI with theirs (scripts/stack/config.ts, scripts/cli/config.ts), so a process validates
 * exactly what it uses. This module is the only one that touches process.env.
 */
export const baseSchema = z.object({
  NODE_ENV: z.string().default('development'),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  DATABASE_URL: z.string().url().default('postgres://postgres@127.0.0.1:5432/messenger'),
  DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(200).default(10),
  AMQP_URL: z.string().default('amqp://guest:guest@127.0.0.1:5672'),
  HOST: z.string().default('0.0.0.0'),
  /** Ed25519 key that signs pushes; created by `npm run keys` when absent. */
  SIGNING_KEY_FILE: z.string().default('cert/signing-key.json'),
  /** Internal port serving Prometheus GET /metrics on HOST (0 = off); never routed by nginx. */
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  /** RabbitMQ queue type: quorum (replicated, survives a node loss in a cluster) or classic (single node). */
  AMQP_QUEUE_TYPE: z.enum(['quorum', 'classic']).default('quorum'),
  /** Prefix of every queue/exchange name (`<prefix>.deliveries`, `<prefix>.live`…); tests use a unique one. */
  AMQP_PREFIX: z
    .string()
    .regex(/^[\w.-]{1,100}$/)
    .default('messenger'),
  /**
   * Shared because every process declares the retry queues (one per delay tier between base and
   * max, common/queue/topology.ts) and their arguments must agree. Backoff: attempt n waits a
   * random time in [base, min(max, base·2^(n-1))] (full jitter, floored at base).
   */
  SENDER_RETRY_BASE_MS: z.coerce.number().int().positive().default(1_000),
  SENDER_RETRY_MAX_MS: z.coerce.number().int().positive().default(3_600_000),
  /**
   * Delivery queues, each device's deliveries always in the same one (common/queue/topology.ts).
   * One quorum queue is one Raft leader on one core of one node: past a few thousand deliveries/s
   * more shards spread them over the cluster. Every process must agree (listeners publish by it,
   * senders consume them all); changing it leaves messages of removed shards to be drained.
   */
  AMQP_DELIVERY_SHARDS: z.coerce.number().int().min(1).max(64).default(1),
});

export type Config = z.output<typeof baseSchema>;

/**
 * Envelopes one message may carry (`MAX_ENVELOPES` of the send route, which a test holds equal):
 * a group send covers every device of every member but the sending one.
 */
export const ENVELOPE_LIMIT = 1000;

/** Parses `env` with `schema`; a bad value throws one line per problem, naming the variable. */
export function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.output<S> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

/** The shared variables alone: for scripts and tests that need only the database or the broker. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return parseEnv(baseSchema, env);
}
