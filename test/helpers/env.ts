import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ListenerConfig, loadListenerConfig } from '../../listener/config.ts';
import { loadSenderConfig, type SenderConfig } from '../../sender/config.ts';

/** Tests run against their own database; cheap password hashing keeps the suite fast. */
export function testEnv(overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/messenger_test',
    AMQP_URL: process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    PASSWORD_HASH_COST: '1024',
    // Never the default 'messenger' prefix: relays in tests must not fill a local stack's queues.
    // TEST_AMQP_PREFIX (with TEST_DATABASE_URL) lets two suites run side by side on one machine.
    AMQP_PREFIX: process.env.TEST_AMQP_PREFIX ?? 'test.shared',
    SIGNING_KEY_FILE: join(tmpdir(), 'messenger-test-signing-key.json'),
    HOST: '127.0.0.1',
    PORT: '0',
    ...overrides,
  };
}

/** What a listener and a sender of a test would read, together. */
export function testConfig(overrides: Record<string, string> = {}): ListenerConfig & SenderConfig {
  const env = testEnv(overrides);
  return { ...loadSenderConfig(env), ...loadListenerConfig(env) };
}
