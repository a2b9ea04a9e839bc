import type { Db } from '../../common/db/index.ts';

/**
 * Where file bytes live. The only module that knows; replace it to move bytes elsewhere
 * (object storage, …) without touching routes. Metadata (uploader, size, sha256, references)
 * stays in PostgreSQL (listener/db/files.ts), and its `files` row exists before `write` starts.
 */
export interface FileStore {
  /** Stores `chunks` as the bytes of file `id`, consuming them with backpressure. */
  write(id: string, chunks: AsyncIterable<Uint8Array>): Promise<void>;
  /** The bytes of file `id`, in order, a bounded piece at a time. */
  read(id: string): AsyncIterable<Buffer>;
  remove(ids: string[]): Promise<void>;
}

/** 256 KiB rows: small enough to stream and to keep memory flat, large enough to keep row count low. */
const CHUNK_BYTES = 256 * 1024;

/**
 * Bytes in PostgreSQL `file_chunks` rows. Every listener shares the database, so any listener
 * serves any file without a shared disk, and bytes are backed up and replicated with the rest.
 * Each chunk is its own short statement: a slow upload or download never pins a pooled connection.
 */
export function pgFileStore(db: Db, chunkBytes = CHUNK_BYTES): FileStore {
  return {
    async write(id, chunks) {
      let idx = 0;
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      const flush = async (data: Buffer) => {
        await db('file_chunks').insert({ file_id: id, idx: idx++, data });
      };
      for await (const piece of chunks) {
        pending.push(Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength));
        pendingBytes += piece.byteLength;
        while (pendingBytes >= chunkBytes) {
          const all = Buffer.concat(pending, pendingBytes);
          await flush(all.subarray(0, chunkBytes));
          pending = [all.subarray(chunkBytes)];
          pendingBytes -= chunkBytes;
        }
      }
      if (pendingBytes > 0) await flush(Buffer.concat(pending, pendingBytes));
    },
    async *read(id) {
      for (let idx = 0; ; idx++) {
        const row: { data: Buffer } | undefined = await db('file_chunks')
          .select('data')
          .where({ file_id: id, idx })
          .first();
        if (!row) return;
        yield row.data;
      }
    },
    async remove(ids) {
      if (ids.length) await db('file_chunks').whereIn('file_id', ids).delete();
    },
  };
}
