import { deleteUnreferencedFiles } from '../db/files.ts';
import { deleteEmptyGroups } from '../db/groups.ts';
import type { Deps } from '../deps.ts';

/**
 * Deletes uploads no message references FILE_GC_AGE_SECONDS after upload (also abandoned
 * uploads), in batches, and groups whose last member's account was deleted. Every listener runs
 * it; concurrent runs take disjoint batches (see deleteUnreferencedFiles).
 */
export async function collectFiles({
  db,
  files,
  config,
  log,
}: Pick<Deps, 'db' | 'files' | 'config' | 'log'>): Promise<number> {
  let total = 0;
  for (;;) {
    const ids = await deleteUnreferencedFiles(db, config.FILE_GC_AGE_SECONDS);
    if (!ids.length) break;
    await files.remove(ids);
    total += ids.length;
  }
  const groups = await deleteEmptyGroups(db);
  if (total || groups) log.info({ files: total, empty_groups: groups }, 'file gc');
  return total;
}
