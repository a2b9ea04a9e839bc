import { z } from 'zod';
import { baseSchema, envBool, parseEnv } from '../common/config.ts';

/** What a sender reads besides the shared variables (common/config.ts). */
const senderSchema = baseSchema.extend({
  /** Deliveries one sender process works on at once (RabbitMQ prefetch). */
  SENDER_PREFETCH: z.coerce.number().int().min(1).max(1000).default(128),
  /** After this long since the event was queued, a failing delivery is dead (parked; stays for pull). */
  SENDER_RETRY_WINDOW_MS: z.coerce.number().int().positive().default(86_400_000),
  /** Off only in tests that need deterministic delays. */
  SENDER_RETRY_JITTER: envBool.default(true),
  SENDER_CONNECT_TIMEOUT_MS: z.coerce.number().int().positive().default(5_000),
  /** Whole push request (connect, headers, body) must finish within this. */
  SENDER_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
  /** Keep-alive connections and pushes in flight per receiver origin, per sender (more are deferred). */
  SENDER_CONNECTIONS_PER_ORIGIN: z.coerce.number().int().min(1).max(256).default(8),
  /** Let pushes reach loopback/private/link-local addresses (local development and tests only). */
  SENDER_ALLOW_PRIVATE_ADDRESSES: envBool.default(false),
});

export type SenderConfig = z.output<typeof senderSchema>;

export function loadSenderConfig(env?: NodeJS.ProcessEnv): SenderConfig {
  return parseEnv(senderSchema, env);
}
