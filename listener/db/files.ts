import type { Q, Tx } from '../../common/db/index.ts';

export interface FileMeta {
  id: string;
  size: number;
  sha256: string;
}

/** Starts an upload: the row exists (size NULL) while the bytes are being written. */
export async function insertFile(q: Q, id: string, uploaderId: string): Promise<void> {
  await q('files').insert({ id, uploader_id: uploaderId });
}

export async function completeFile(q: Q, id: string, size: number, sha256: string): Promise<void> {
  await q('files').where({ id }).update({ size, sha256 });
}

/** Bytes a user keeps stored; an upload in progress (no size yet) counts as `inProgressBytes`. */
export async function storedBytes(q: Q, uploaderId: string, inProgressBytes: number): Promise<number> {
  const row = await q('files')
    .where({ uploader_id: uploaderId })
    .first(q.raw('coalesce(sum(coalesce(size, ?)), 0)::bigint AS n', [inProgressBytes]));
  return Number((row as { n?: string } | undefined)?.n ?? 0);
}

/** Drops a failed or refused upload with its chunks. */
export async function discardFile(q: Q, id: string): Promise<void> {
  await q('files').where({ id }).delete();
}

/**
 * A complete file the user may read: their own upload, or one referenced by a message (not
 * deleted) they were a recipient of when it was sent.
 */
export async function findReadableFile(q: Q, id: string, userId: string): Promise<FileMeta | undefined> {
  const { rows } = await q.raw<{ rows: { id: string; size: string; sha256: string }[] }>(
    `SELECT f.id, f.size, f.sha256 FROM files f
      WHERE f.id = ? AND f.size IS NOT NULL
        AND (f.uploader_id = ? OR EXISTS (
              SELECT 1 FROM message_files mf
                JOIN messages m ON m.id = mf.message_id AND m.deleted_at IS NULL
                JOIN message_recipients r ON r.message_id = m.id AND r.user_id = ?
               WHERE mf.file_id = f.id))`,
    [id, userId, userId],
  );
  const row = rows[0];
  return row && { id: row.id, size: Number(row.size), sha256: row.sha256 };
}

/**
 * Within a send transaction: true when every id is a complete upload of `uploaderId`. The
 * rows are key-share locked, so the file GC (which locks them FOR UPDATE SKIP LOCKED) cannot
 * delete a file that this message is about to reference.
 */
export async function lockOwnFiles(trx: Tx, uploaderId: string, ids: string[]): Promise<boolean> {
  if (!ids.length) return true;
  const { rows } = await trx.raw<{ rows: unknown[] }>(
    `SELECT id FROM files WHERE id = ANY(?::uuid[]) AND uploader_id = ? AND size IS NOT NULL FOR KEY SHARE`,
    [ids, uploaderId],
  );
  return rows.length === ids.length;
}

export async function linkFiles(trx: Tx, messageId: string, ids: string[]): Promise<void> {
  if (ids.length)
    await trx('message_files').insert(ids.map((file_id) => ({ message_id: messageId, file_id })));
}

export async function unlinkFiles(trx: Tx, messageId: string): Promise<void> {
  await trx('message_files').where({ message_id: messageId }).delete();
}

export async function filesOfMessage(q: Q, messageId: string): Promise<string[]> {
  const rows: { file_id: string }[] = await q('message_files')
    .select('file_id')
    .where({ message_id: messageId })
    .orderBy('file_id');
  return rows.map((r) => r.file_id);
}

/**
 * Deletes up to `limit` files (complete or abandoned uploads) that no message references and
 * that are older than `ageSeconds`. Safe with several listeners: candidates are locked
 * SKIP LOCKED (each runner takes different ones) and re-checked with a fresh snapshot, and a
 * sender referencing a file holds a key-share lock that keeps it off the candidate list.
 */
export async function deleteUnreferencedFiles(q: Q, ageSeconds: number, limit = 500): Promise<string[]> {
  return q.transaction(async (trx) => {
    const { rows: candidates } = await trx.raw<{ rows: { id: string }[] }>(
      `SELECT f.id FROM files f
        WHERE f.created_at < now() - make_interval(secs => ?)
          AND NOT EXISTS (SELECT 1 FROM message_files mf WHERE mf.file_id = f.id)
        ORDER BY f.created_at
        LIMIT ? FOR UPDATE SKIP LOCKED`,
      [ageSeconds, limit],
    );
    if (!candidates.length) return [];
    const { rows } = await trx.raw<{ rows: { id: string }[] }>(
      `DELETE FROM files f
        WHERE f.id = ANY(?::uuid[])
          AND NOT EXISTS (SELECT 1 FROM message_files mf WHERE mf.file_id = f.id)
        RETURNING f.id`,
      [candidates.map((c) => c.id)],
    );
    return rows.map((r) => r.id);
  });
}
