import amqp from 'amqplib';
import { ensureDatabase, migrate } from '../common/db/admin.ts';
import { deleteTopology } from '../common/queue/topology.ts';
import { testConfig } from './helpers/env.ts';

/** Creates the test database when missing and migrates it, once per run. */
export async function mochaGlobalSetup(): Promise<void> {
  const url = testConfig().DATABASE_URL;
  await ensureDatabase(url);
  await migrate(url);
}

/**
 * Removes the queues that in-process test listeners relay into (nothing consumes them in tests),
 * so runs do not pile up deliveries on the machine's RabbitMQ.
 */
export async function mochaGlobalTeardown(): Promise<void> {
  const config = testConfig();
  const connection = await amqp.connect(config.AMQP_URL);
  try {
    await deleteTopology(await connection.createChannel(), config);
  } finally {
    await connection.close();
  }
}
