import { z } from 'zod';
import { route } from '../http/route.ts';
import * as s from '../http/schemas.ts';
import {
  type DeviceWithSession,
  listDevices,
  removeDevice,
  updateCurrentDevice,
} from '../use-cases/devices.ts';

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

function present(d: DeviceWithSession, currentDeviceId: string) {
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
    current: d.id === currentDeviceId,
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
      const rows = await listDevices(ctx.deps, ctx.state);
      ctx.body = { devices: rows.map((d) => present(d, ctx.state.auth.deviceId)) };
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
      const row = await updateCurrentDevice(ctx.deps, ctx.state, {
        name: body.name,
        userAddress: body.user_address,
      });
      ctx.body = present(row, ctx.state.auth.deviceId);
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
      await removeDevice(ctx.deps, ctx.state, params.device_id);
      ctx.status = 204;
    },
  }),
];
