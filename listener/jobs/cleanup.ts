import { pruneDeliveryAttempts } from '../../common/db/deliveries.ts';
import type { Db } from '../../common/db/index.ts';
import type { Logger } from '../../common/log.ts';
import type { ListenerConfig } from '../config.ts';
import { deleteInactiveDevices } from '../db/devices.ts';
import { deleteExpiredInbox } from '../db/inbox.ts';
import { deleteStaleLoginFailures, failureBudget } from '../db/login-failures.ts';
import { releaseOldClientMessageIds } from '../db/messages.ts';
import { deleteExpiredSessions } from '../db/sessions.ts';

/**
 * Expiry of undelivered events (INBOX_TTL_DAYS), sessions, login-failure windows, the 24 h
 * idempotency window and devices unseen for DEVICE_INACTIVE_DAYS. Plain DELETE/UPDATE by time,
 * so every listener may run it concurrently. `revoke` (the session cache's broadcast) runs for
 * every user who lost a device, after the delete committed, so no listener serves it on.
 */
export async function cleanup(
  db: Db,
  config: ListenerConfig,
  log: Logger,
  revoke: (userId: string) => Promise<void>,
): Promise<void> {
  const inactive = await deleteInactiveDevices(db, config.DEVICE_INACTIVE_DAYS);
  for (const userId of inactive.users) await revoke(userId);
  const counts = {
    devices: inactive.deleted,
    inbox: await deleteExpiredInbox(db),
    sessions: await deleteExpiredSessions(db),
    login_failures: await deleteStaleLoginFailures(db, failureBudget(config)),
    client_message_ids: await releaseOldClientMessageIds(db),
    delivery_attempts: await pruneDeliveryAttempts(db, config.DELIVERY_ATTEMPTS_RETENTION_DAYS),
  };
  if (Object.values(counts).some(Boolean)) log.info(counts, 'cleanup');
}
