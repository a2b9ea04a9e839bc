import { z } from 'zod';
import {
  type DeviceRow,
  deleteDevice,
  findDevice,
  listDevicesWithSessions,
  updateDevice,
} from '../../common/db/devices.ts';
import { requeueInbox } from '../../common/db/inbox.ts';
import { notFound } from '../../common/errors.ts';
import { type Ctx, route } from '../http/route.ts';
import * as s from '../http/schemas.ts';
import { withEvents } from '../messaging/append.ts';

const device = z
  .object({
    device_id: s.id,
    name: z.string().nullable(),
    public_key: z.string(),
    created_at: s.timestamp,
    last_active_at: s.timestamp,
    last_ip: z.string().nullable(),
    user_agent: z.string().nullable(),
    has_address: z.boolean(),
    signed_in: z.boolean(),
    current: z.boolean(),
  })
  .meta({ id: 'Device' });

function present(ctx: Ctx, d: DeviceRow & { signed_in: boolean }) {
  return {
    device_id: d.id,
    name: d.name,
    public_key: d.public_key,
    created_at: d.created_at.toISOString(),
    last_active_at: d.last_active_at.toISOString(),
    last_ip: d.last_ip,
    user_agent: d.user_agent,
    has_address: d.user_address !== null,
    signed_in: d.signed_in,
    current: d.id === ctx.state.auth.deviceId,
  };
}

export const deviceRoutes = [
  route({
    method: 'get',
    path: '/api/devices',
    tag: 'devices',
    summary: 'List own devices',
    auth: true,
    responses: { 200: { description: 'devices', schema: z.object({ devices: z.array(device) }) } },
    async handle(ctx) {
      const rows = await listDevicesWithSessions(ctx.deps.db, ctx.state.auth.userId);
      ctx.body = { devices: rows.map((d) => present(ctx, d)) };
    },
  }),
  route({
    method: 'patch',
    path: '/api/devices/current',
    tag: 'devices',
    summary: 'Rename this device or set/clear its push address (setting one pushes what is queued)',
    auth: true,
    body: z.strictObject({ user_address: s.httpUrl.nullable().optional(), name: s.deviceName.optional() }),
    responses: {
      200: { description: 'the device', schema: device },
      404: { description: 'the device was removed meanwhile (by another of your devices)' },
    },
    async handle(ctx, { body }) {
      const { deviceId, userId } = ctx.state.auth;
      await withEvents(ctx, async (trx, _append, wrote) => {
        const before = await findDevice(trx, deviceId);
        await updateDevice(trx, deviceId, {
          ...(body.name !== undefined && { name: body.name }),
          ...(body.user_address !== undefined && { user_address: body.user_address }),
        });
        // Only a new address pushes what is queued (the same one again would push it all again).
        if (body.user_address && before && body.user_address !== before.user_address)
          wrote(await requeueInbox(trx, deviceId, ctx.deps.config.REQUEUE_MAX_EVENTS, ctx.state.requestId));
      });
      const row = (await listDevicesWithSessions(ctx.deps.db, userId)).find((d) => d.id === deviceId);
      if (!row) throw notFound('no such device');
      ctx.body = present(ctx, row);
    },
  }),
  route({
    method: 'delete',
    path: '/api/devices/:device_id',
    tag: 'devices',
    summary: 'Remove one of your devices with its session and inbox',
    auth: true,
    params: z.strictObject({ device_id: s.ref }),
    responses: { 204: { description: 'removed' }, 404: { description: 'not one of your devices' } },
    async handle(ctx, { params }) {
      if (!params.device_id || !(await deleteDevice(ctx.deps.db, ctx.state.auth.userId, params.device_id))) {
        throw notFound('no such device');
      }
      await ctx.deps.cache.revoke(ctx.state.auth.userId);
      ctx.status = 204;
    },
  }),
];
