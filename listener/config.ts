import { hostname } from 'node:os';
import { z } from 'zod';
import { baseSchema, ENVELOPE_LIMIT, envBool, envList, parseEnv } from '../common/config.ts';

/** What a listener reads besides the shared variables (common/config.ts). */
const listenerSchema = baseSchema.extend({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  /** Run pending migrations before serving (compose runs them once in a dedicated job). */
  MIGRATE_ON_START: envBool.default(false),
  /** Proxies whose X-Forwarded-For is believed: IPs or CIDRs, comma separated. */
  TRUSTED_PROXIES: envList.default(['127.0.0.1/8', '::1/128']),
  SESSION_TTL_DAYS: z.coerce.number().positive().default(30),
  /** Absolute session lifetime: a session ends this long after login however often it is used. */
  SESSION_MAX_DAYS: z.coerce.number().positive().default(90),
  INBOX_TTL_DAYS: z.coerce.number().positive().default(30),
  /**
   * A new message is refused (429 recipient_inbox_full, nothing stored) while one of its
   * receiving devices holds this many undelivered events (0 = no limit).
   */
  INBOX_MAX_EVENTS: z.coerce.number().int().min(0).default(10_000),
  /** Pending events one login or new push address queues for push at most (the rest wait for pull). */
  REQUEUE_MAX_EVENTS: z.coerce.number().int().min(0).default(1_000),
  CLEANUP_INTERVAL_MS: z.coerce.number().int().positive().default(60_000),
  /** Failed logins for one username from one place (client IP, IPv6 /64) before that place waits, and how long. */
  LOGIN_MAX_FAILURES: z.coerce.number().int().positive().default(10),
  LOGIN_LOCK_SECONDS: z.coerce.number().int().positive().default(60),
  /**
   * Failed logins for one username from all places together before everyone waits (the slow
   * ceiling). Default 1000, or more when the per-place budget would let one place reach that.
   */
  LOGIN_USER_MAX_FAILURES: z.coerce.number().int().positive().optional(),
  LOGIN_USER_WINDOW_SECONDS: z.coerce.number().int().positive().default(3600),
  /** Devices one account may have; a login that would add one more is refused (409 too_many_devices). */
  DEVICES_PER_USER_MAX: z.coerce.number().int().min(1).max(1000).default(10),
  /** Devices unseen (no authenticated request or stream) this long are deleted by the cleanup job. */
  DEVICE_INACTIVE_DAYS: z.coerce.number().positive().default(90),
  /** Groups one user may be a member of (409 too_many_groups past it). */
  GROUPS_PER_USER_MAX: z.coerce.number().int().min(1).default(200),
  /** Members per group (409 group_full past it); times DEVICES_PER_USER_MAX it must fit one message. */
  GROUP_MEMBERS_MAX: z.coerce.number().int().min(2).default(100),
  /** Membership changes (adds, joins, removals of others) per group per minute (429 past it). */
  GROUP_CHANGES_PER_MINUTE: z.coerce.number().int().min(1).default(30),
  /** scrypt cost (N, 2^17 as OWASP advises: 128 MiB per hash); tests lower it. A power of two. */
  PASSWORD_HASH_COST: z.coerce
    .number()
    .int()
    .refine((n) => n >= 1024 && (n & (n - 1)) === 0, 'a power of two >= 1024')
    .default(131_072),
  /** Outbox rows the relay publishes per transaction, and how often it sweeps for leftovers. */
  OUTBOX_BATCH_SIZE: z.coerce.number().int().min(1).max(5000).default(200),
  OUTBOX_SWEEP_MS: z.coerce.number().int().positive().default(1_000),
  /**
   * The sweep takes only rows at least this old: younger ones are being published by the listener
   * that wrote them. Bounds how late a row whose writer crashed (or met a broker outage) goes out.
   */
  OUTBOX_SWEEP_AGE_MS: z.coerce.number().int().min(0).default(5_000),
  /** Sends stored by one statement at most (group commit: whatever arrived while the last one ran). */
  SEND_BATCH_MAX: z.coerce.number().int().min(1).max(1000).default(64),
  /**
   * While sends keep coming (the one before came less than this long ago), a send that finds no
   * statement running waits this long for others to share its statement; after a quiet spell a
   * send is stored at once. 0: never wait.
   */
  SEND_BATCH_LINGER_MS: z.coerce.number().int().min(0).max(100).default(12),
  /**
   * How long a listener may reuse a session or a device directory it read, as a safety net only:
   * logout, device and account changes broadcast an invalidation that every listener applies on
   * receipt, and a listener whose broker subscription is down reads through (0 = no cache).
   */
  AUTH_CACHE_TTL_MS: z.coerce.number().int().min(0).default(60_000),
  DELIVERY_ATTEMPTS_RETENTION_DAYS: z.coerce.number().positive().default(7),
  /** Largest accepted file upload (25 MiB, docs/API.md#files); larger uploads get 413 and nothing is stored. */
  FILE_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .default(25 * 1024 * 1024),
  /**
   * Bytes of files one user may keep stored (1 GiB): an upload that would pass it is 413
   * storage_quota_exceeded, nothing stored; an upload in progress counts as FILE_MAX_BYTES.
   */
  FILE_STORAGE_PER_USER_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .default(1024 * 1024 * 1024),
  /** Uploads no message references are deleted this long after upload (default 1 h). */
  FILE_GC_AGE_SECONDS: z.coerce.number().positive().default(3600),
  /** Names this process in the presence table (default hostname:pid). */
  INSTANCE_ID: z
    .string()
    .min(1)
    .max(200)
    .default(() => `${hostname()}:${process.pid}`),
  /** Live stream: ping interval; a socket that missed the previous pong is dropped (dead peer). */
  STREAM_PING_INTERVAL_MS: z.coerce.number().int().positive().default(30_000),
  /** Live stream: how long a socket without an Authorization header may take to send its auth frame. */
  STREAM_AUTH_TIMEOUT_MS: z.coerce.number().int().positive().default(5_000),
  /** Live stream: bytes queued for one socket before sending waits; a client that does not drain them in STREAM_SEND_TIMEOUT_MS is closed. */
  STREAM_MAX_BUFFERED_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(4 * 1024 * 1024),
  STREAM_SEND_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
  /** Presence: each listener refreshes its open streams this often; a user is online while a stream beat within the expiry. */
  PRESENCE_HEARTBEAT_MS: z.coerce.number().int().positive().default(10_000),
  PRESENCE_EXPIRY_MS: z.coerce.number().int().positive().default(30_000),
  /**
   * Presence: a user whose last stream closes is announced offline this long after, unless a stream
   * of theirs opens meanwhile (a reconnect then makes no offline/online noise). Kept under the
   * contract's 2 s for change frames by default; 0 announces at once.
   */
  PRESENCE_GRACE_MS: z.coerce.number().int().min(0).max(60_000).default(1_000),
});

/** What one place can fail within LOGIN_USER_WINDOW_SECONDS, failing as fast as its budget allows. */
const onePlaceFailures = (c: z.output<typeof listenerSchema>) =>
  c.LOGIN_MAX_FAILURES * (Math.floor(c.LOGIN_USER_WINDOW_SECONDS / c.LOGIN_LOCK_SECONDS) + 1);

/** Limits that only make sense together; checked once, like the values themselves. */
const checked = listenerSchema
  .superRefine((c, ctx) => {
    if (c.GROUP_MEMBERS_MAX * c.DEVICES_PER_USER_MAX - 1 > ENVELOPE_LIMIT) {
      ctx.addIssue({
        code: 'custom',
        path: ['GROUP_MEMBERS_MAX'],
        message: `GROUP_MEMBERS_MAX × DEVICES_PER_USER_MAX - 1 must be at most ${ENVELOPE_LIMIT} (envelopes per message), or a full group could not be sent to`,
      });
    }
    // One place must not reach the all-places ceiling, or one attacker locks the owner out.
    const onePlace = onePlaceFailures(c);
    if (c.LOGIN_USER_MAX_FAILURES !== undefined && onePlace >= c.LOGIN_USER_MAX_FAILURES) {
      ctx.addIssue({
        code: 'custom',
        path: ['LOGIN_USER_MAX_FAILURES'],
        message: `must exceed what one place can fail in LOGIN_USER_WINDOW_SECONDS (${onePlace}), or one attacker locks the owner out`,
      });
    }
    if (c.SESSION_MAX_DAYS < c.SESSION_TTL_DAYS) {
      ctx.addIssue({
        code: 'custom',
        path: ['SESSION_MAX_DAYS'],
        message: 'must be at least SESSION_TTL_DAYS',
      });
    }
  })
  .transform((c) => ({
    ...c,
    LOGIN_USER_MAX_FAILURES: c.LOGIN_USER_MAX_FAILURES ?? Math.max(1000, onePlaceFailures(c) + 1),
  }));

export type ListenerConfig = z.output<typeof checked>;

export function loadListenerConfig(env?: NodeJS.ProcessEnv): ListenerConfig {
  return parseEnv(checked, env);
}
