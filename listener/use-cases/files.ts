import { createHash, randomUUID } from 'node:crypto';
import { completeFile, discardFile, findReadableFile, insertFile, storedBytes } from '../db/files.ts';
import type { Deps } from '../deps.ts';
import { AppError, badRequest, notFound, payloadTooLarge } from '../errors.ts';
import type { Actor } from './caller.ts';

export interface UploadInput {
  /** The body's declared length (Content-Length), when it has one. */
  declaredBytes: number | null;
  body: AsyncIterable<Buffer>;
  /**
   * Called when the upload is refused or fails before its body was stored: the rest of the body
   * will not be read, so the connection should not be reused for another request.
   */
  abandoned(): void;
}

export interface Uploaded {
  file_id: string;
  size: number;
  sha256: string;
}

/** The body as it arrives, counted and hashed, failing as soon as it passes `max` bytes. */
async function* measured(
  body: AsyncIterable<Buffer>,
  max: { bytes: number; error: () => AppError },
  seen: { size: number; hash: ReturnType<typeof createHash> },
) {
  for await (const piece of body) {
    seen.size += piece.byteLength;
    if (seen.size > max.bytes) throw max.error();
    seen.hash.update(piece);
    yield piece;
  }
}

/**
 * Stores a client-encrypted file of the actor, streamed in: at most FILE_MAX_BYTES, and within
 * what is left of the actor's FILE_STORAGE_PER_USER_BYTES (an upload in progress counts as
 * FILE_MAX_BYTES). Nothing is kept of an upload that fails.
 */
export async function uploadFile(deps: Deps, actor: Actor, input: UploadInput): Promise<Uploaded> {
  const { db, files, config } = deps;
  const max = config.FILE_MAX_BYTES;
  const declared = input.declaredBytes;
  const left = config.FILE_STORAGE_PER_USER_BYTES - (await storedBytes(db, actor.auth.userId, max));
  const quota = () =>
    new AppError(
      413,
      'storage_quota_exceeded',
      `your files may take ${config.FILE_STORAGE_PER_USER_BYTES} bytes in all; delete messages with files to free some`,
    );
  const limit =
    left < max
      ? { bytes: left, error: quota }
      : { bytes: max, error: () => payloadTooLarge(`a file is at most ${max} bytes`) };
  if (limit.bytes <= 0 || (declared !== null && declared > limit.bytes)) {
    // Refused before reading: do not keep the connection to drain a body we will not store.
    input.abandoned();
    throw limit.error();
  }
  const id = randomUUID();
  const seen = { size: 0, hash: createHash('sha256') };
  await insertFile(db, id, actor.auth.userId);
  try {
    await files.write(id, measured(input.body, limit, seen));
    if (seen.size === 0) throw badRequest('the file is empty', [{ field: 'body', problem: 'empty' }]);
    // A body cut short (client gone) must never be stored as a complete file.
    if (declared !== null && seen.size !== declared) throw badRequest('the upload ended early');
  } catch (err) {
    input.abandoned();
    await discardFile(db, id);
    await files.remove([id]);
    throw err;
  }
  const sha256 = seen.hash.digest('hex');
  await completeFile(db, id, seen.size, sha256);
  actor.log.info({ file_id: id, size: seen.size }, 'file uploaded');
  return { file_id: id, size: seen.size, sha256 };
}

/** A file the actor uploaded or received in a message (see findReadableFile), with its bytes; 404 otherwise. */
export async function downloadFile(
  deps: Deps,
  actor: Actor,
  fileId: string | null,
): Promise<{ size: number; sha256: string; bytes: AsyncIterable<Buffer> }> {
  const file = fileId === null ? undefined : await findReadableFile(deps.db, fileId, actor.auth.userId);
  if (!file) throw notFound('no such file');
  return { size: file.size, sha256: file.sha256, bytes: deps.files.read(file.id) };
}
