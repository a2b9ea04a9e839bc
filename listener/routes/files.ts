import { Readable } from 'node:stream';
import { z } from 'zod';
import { unsupportedMediaType } from '../errors.ts';
import { route } from '../http/route.ts';
import * as s from '../http/schemas.ts';
import { downloadFile, uploadFile } from '../use-cases/files.ts';

const uploaded = z
  .object({ file_id: s.id, size: z.number().int(), sha256: z.string().regex(/^[0-9a-f]{64}$/) })
  .meta({ id: 'UploadedFile' });

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
      if (ctx.request.type !== 'application/octet-stream')
        throw unsupportedMediaType('upload the raw bytes as application/octet-stream');
      const declared = ctx.get('content-length');
      ctx.body = await uploadFile(ctx.deps, ctx.state, {
        declaredBytes: declared ? Number(declared) : null,
        body: ctx.req as AsyncIterable<Buffer>,
        abandoned: () => ctx.set('Connection', 'close'),
      });
      ctx.status = 201;
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
      const file = await downloadFile(ctx.deps, ctx.state, params.file_id);
      ctx.body = Readable.from(file.bytes);
      ctx.type = 'application/octet-stream';
      ctx.length = file.size;
      ctx.set('X-Content-SHA256', file.sha256);
      ctx.set('Cache-Control', 'private, no-store');
    },
  }),
];
