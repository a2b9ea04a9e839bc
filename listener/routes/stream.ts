import { z } from 'zod';
import { AppError } from '../errors.ts';
import { route } from '../http/route.ts';
import * as s from '../http/schemas.ts';
import { visiblePresence } from '../presence/state.ts';

const MAX_PRESENCE_USERS = 100;

const usernameList = z
  .string()
  .transform((v) => v.split(','))
  .pipe(z.array(s.username).min(1).max(MAX_PRESENCE_USERS, `at most ${MAX_PRESENCE_USERS} usernames`));

export const streamRoutes = [
  route({
    method: 'get',
    path: '/api/stream',
    tag: 'stream',
    summary:
      'Live stream (WebSocket). Authenticate with `Authorization: Bearer` on the upgrade (missing or bad → 401, ' +
      'no upgrade) or, without the header, with a first frame `{"type":"auth","token"}` within 5 s (else close 4401). ' +
      'The server sends `{"type":"event","event":{…}}` for this device, backlog first, then live; the client sends ' +
      '`{"type":"ack","up_to":seq}`. Presence: the client sends `{"type":"presence.subscribe","users":[username]}` ' +
      '(at most 500 names; a later frame replaces the set, `[]` ends it) and gets ' +
      '`{"type":"presence","username","online":boolean,"since":RFC 3339|null}` for each subscribed contact at once, ' +
      'then one per change (first stream opened; last one closed, after `PRESENCE_GRACE_MS`; or expired with a dead ' +
      'listener), from any listener. Non-contacts and unknown names never get a frame (read them as offline). ' +
      'Presence frames carry no `seq` and are not acked or replayed. ' +
      'Bad frames close the socket with 1008 (1003 binary, 1009 over 64 KiB) and a ' +
      'reason; a client that does not read is closed with 4008; unanswered pings drop the socket.',
    auth: false,
    responses: {
      101: { description: 'switching protocols to WebSocket' },
      400: { description: '`invalid_request`: an `Upgrade` header other than `websocket`' },
      401: {
        description:
          '`unauthorized`: an `Authorization` header with a missing, invalid or expired token; no upgrade',
      },
      426: { description: '`upgrade_required`: a plain request without `Upgrade: websocket`' },
    },
    handle() {
      throw new AppError(426, 'upgrade_required', 'connect with a WebSocket client', {
        headers: { Upgrade: 'websocket' },
      });
    },
  }),
  route({
    method: 'get',
    path: '/api/presence',
    tag: 'stream',
    summary:
      'Which of these users (comma-separated, at most 100) are online: have a device with an open live ' +
      'stream (or closed their last one less than `PRESENCE_GRACE_MS` ago). Presence is visible only between ' +
      'contacts (a shared group, or a direct message either way); anyone else and unknown usernames are ' +
      'simply not online. Live changes: `presence.subscribe` on the stream.',
    auth: true,
    query: z.strictObject({ users: usernameList }),
    responses: {
      200: {
        description: 'the online subset, in the order asked',
        schema: z.object({ online: z.array(z.string()) }).meta({ id: 'Presence' }),
      },
    },
    async handle(ctx, { query }) {
      const asked = [...new Set(query.users)];
      const { db, config } = ctx.deps;
      const states = await visiblePresence(db, ctx.state.auth.userId, asked, config.PRESENCE_EXPIRY_MS);
      const online = new Set(states.filter((p) => p.online).map((p) => p.username));
      ctx.body = { online: asked.filter((u) => online.has(u)) };
    },
  }),
];
