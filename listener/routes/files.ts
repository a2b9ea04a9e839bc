import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { completeFile, discardFile, findReadableFile, insertFile, storedBytes } from '../db/files.ts';
import { AppError, badRequest, notFound, payloadTooLarge, unsupportedMediaType } from '../errors.ts';
import { type Ctx, route } from '../http/route.ts';
import * as s from '../http/schemas.ts';

const uploaded = z
  .object({ file_id: s.id, size: z.number().int(), sha256: z.string().regex(/^[0-9a-f]{64}$/) })
  .meta({ id: 'UploadedFile' });

/** The request body as it arrives, counted and hashed, failing as soon as it passes `max` bytes. */
async function* measured(
  ctx: Ctx,
  max: { bytes: number; error: () => AppError },
  seen: { size: number; hash: ReturnType<typeof createHash> },
) {
  for await (const piece of ctx.req as AsyncIterable<Buffer>) {
    seen.size += piece.byteLength;
    if (seen.size > max.bytes) throw max.error();
    seen.hash.update(piece);
    yield piece;
  }
}

export const fileRoutes = [
  route({
    method: 'post',
    path: '/api/files',
    tag: 'files',
    summary:
      'Upload a client-encrypted file: the raw bytes as application/octet-stream, at most 25 MiB. Streamed into PostgreSQL in 256 KiB chunks (any listener serves any file); unreferenced uploads are deleted after FILE_GC_AGE_SECONDS (1 h)',
    auth: true,
    // No `body` schema: the route machinery must leave the raw request stream to the handler.
    rawBody: { contentType: 'application/octet-stream', description: 'the client-encrypted file bytes' },
    responses: {
      201: { description: 'stored', schema: uploaded },
      400: { description: 'empty body' },
      413: {
        description:
          '`payload_too_large`: larger than 25 MiB; `storage_quota_exceeded`: past FILE_STORAGE_PER_USER_BYTES; nothing stored',
        errors: ['payload_too_large', 'storage_quota_exceeded'],
      },
      415: { description: 'not application/octet-stream' },
    },
    async handle(ctx) {
      const { db, files, config } = ctx.deps;
      const max = config.FILE_MAX_BYTES;
      if (ctx.request.type !== 'application/octet-stream')
        throw unsupportedMediaType('upload the raw bytes as application/octet-stream');
      const declared = ctx.get('content-length');
      const left = config.FILE_STORAGE_PER_USER_BYTES - (await storedBytes(db, ctx.state.auth.userId, max));
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
      if (limit.bytes <= 0 || (declared && Number(declared) > limit.bytes)) {
        // Refused before reading: do not keep the connection to drain a body we will not store.
        ctx.set('Connection', 'close');
        throw limit.error();
      }
      const id = randomUUID();
      const seen = { size: 0, hash: createHash('sha256') };
      await insertFile(db, id, ctx.state.auth.userId);
      try {
        await files.write(id, measured(ctx, limit, seen));
        if (seen.size === 0) throw badRequest('the file is empty', [{ field: 'body', problem: 'empty' }]);
        // A body cut short (client gone) must never be stored as a complete file.
        if (declared && seen.size !== Number(declared)) throw badRequest('the upload ended early');
      } catch (err) {
        ctx.set('Connection', 'close');
        await discardFile(db, id);
        await files.remove([id]);
        throw err;
      }
      const sha256 = seen.hash.digest('hex');
      await completeFile(db, id, seen.size, sha256);
      ctx.state.log.info({ file_id: id, size: seen.size }, 'file uploaded');
      ctx.status = 201;
      ctx.body = { file_id: id, size: seen.size, sha256 };
    },
  }),
  route({
    method: 'get',
    path: '/api/files/:file_id',
    tag: 'files',
    summary:
      'Download a file (its encrypted bytes) you uploaded, or that a message you received references (1:1 recipient, or group member when it was sent)',
    auth: true,
    params: z.strictObject({ file_id: s.ref }),
    responses: {
      200: {
        description: 'the bytes (application/octet-stream, with Content-Length and X-Content-SHA256)',
        contentType: 'application/octet-stream',
      },
      404: { description: 'no such file, or not shared with you' },
    },
    async handle(ctx, { params }) {
      const file =
        params.file_id === null
          ? undefined
          : await findReadableFile(ctx.deps.db, params.file_id, ctx.state.auth.userId);
      if (!file) throw notFound('no such file');
      ctx.body = Readable.from(ctx.deps.files.read(file.id));
      ctx.type = 'application/octet-stream';
      ctx.length = file.size;
      ctx.set('X-Content-SHA256', file.sha256);
      ctx.set('Cache-Control', 'private, no-store');
    },
  }),
];
