import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { Agent } from 'undici';
import { ensureSigningKey } from '../../common/crypto/signing-key.ts';
import { deleteTopology } from '../../common/queue/topology.ts';
import { type Stack, type StackOptions, startStack } from '../../scripts/stack/index.ts';
import { testConfig, testEnv } from './env.ts';
import { type Call, client } from './http.ts';

export interface TestStack extends Stack {
  /** JSON client through nginx over HTTPS (certificate verified against the stack's own). */
  call: Call;
  /** The same, from another loopback source address (127.0.0.0/8 all reach nginx): another "client IP". */
  callFrom(ip: string): Call;
}

const running = new Set<Stack>();
// A test run that dies must not leave processes behind: kill synchronously on exit.
process.once('exit', () => {
  for (const s of running) {
    for (const pid of [s.nginxPid, ...s.listeners.map((p) => p.pid), ...s.senders.map((p) => p.pid)]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  }
});

/**
 * The whole edge for a test: real listener (and sender) processes on free ports behind a real
 * nginx over HTTPS, in its own run directory under the temp dir, against the test database.
 * Senders default to 0 here. Each stack has its own AMQP_PREFIX (queues deleted on stop).
 */
export async function startTestStack(
  opts: Partial<StackOptions> & { envOverrides?: Record<string, string> } = {},
): Promise<TestStack> {
  const { envOverrides: given = {}, ...rest } = opts;
  // Own queues per stack, so its relays and senders never meet another run's (removed on stop).
  const envOverrides = { AMQP_PREFIX: `test.stack.${randomBytes(4).toString('hex')}`, ...given };
  // Processes log to files in their run dir; info level shows readiness lines (senders are waited on by theirs).
  const env = testEnv({ LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'info', ...envOverrides });
  try {
    await ensureSigningKey(testConfig(envOverrides).SIGNING_KEY_FILE);
  } catch (err) {
    if ((err as { code?: string }).code !== 'EEXIST') throw err;
  }
  const runDir = rest.runDir ?? join(tmpdir(), `messenger-stack-${randomBytes(4).toString('hex')}`);
  let stack: Stack;
  try {
    stack = await startStack({ listeners: 2, senders: 0, ...rest, runDir, env });
  } catch (err) {
    // startStack stopped what it started; its error carries the end of the failing process's log.
    if (!rest.runDir && !process.env.KEEP_STACK_RUN_DIR) await rm(runDir, { recursive: true, force: true });
    throw err;
  }
  running.add(stack);
  const ca = readFileSync(stack.certFile);
  const agents: Agent[] = [];
  const callFrom = (ip: string): Call => {
    const agent = new Agent({ localAddress: ip, connections: 8, connect: { ca, servername: 'localhost' } });
    agents.push(agent);
    return client(stack.url, agent);
  };
  return {
    ...stack,
    call: client(stack.url, stack.dispatcher),
    callFrom,
    async stop() {
      running.delete(stack);
      await Promise.all(agents.map((a) => a.close().catch(() => {})));
      await stack.stop();
      const config = testConfig(envOverrides);
      const conn = await amqp.connect(config.AMQP_URL);
      try {
        await deleteTopology(await conn.createChannel(), config);
      } finally {
        await conn.close();
      }
      if (!rest.runDir && !process.env.KEEP_STACK_RUN_DIR) await rm(runDir, { recursive: true, force: true });
    },
  };
}
