import type { Config } from '../../common/config.ts';
import { deleteUnreferencedFiles } from '../../common/db/files.ts';
import { deleteEmptyGroups } from '../../common/db/groups.ts';
import type { Db } from '../../common/db/index.ts';
import { pgFileStore } from '../../common/files/store.ts';
import type { Logger } from '../../common/log.ts';

/**
 * Deletes uploads no message references FILE_GC_AGE_SECONDS after upload (also abandoned
 * uploads), in batches, and groups whose last member's account was deleted. Every listener runs
 * it; concurrent runs take disjoint batches (see deleteUnreferencedFiles).
 */
export async function collectFiles(db: Db, config: Config, log: Logger): Promise<number> {
  const store = pgFileStore(db);
  let total = 0;
  for (;;) {
    const ids = await deleteUnreferencedFiles(db, config.FILE_GC_AGE_SECONDS);
    if (!ids.length) break;
    await store.remove(ids);
    total += ids.length;
  }
  const groups = await deleteEmptyGroups(db);
  if (total || groups) log.info({ files: total, empty_groups: groups }, 'file gc');
  return total;
}
