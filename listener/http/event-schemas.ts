import { z } from 'zod';
import type { EventType } from '../../common/events.ts';
import * as s from './schemas.ts';

/**
 * The events a device receives (pull, stream, push body) as schemas, one per `type`: the OpenAPI
 * document's `Event` and the tests' check that what the listener stores matches it. The TypeScript
 * shape the listener writes is common/events.ts; docs/API.md#events describes both.
 */

const from = z
  .object({ user_id: s.id, username: z.string(), device_id: s.id, public_key: z.string() })
  .meta({ id: 'EventSender', description: 'the user and device that caused the event' });

const ciphertext = z.string().meta({ contentEncoding: 'base64', description: 'nacl.box for this device' });
const nonce = z.string().meta({ contentEncoding: 'base64', description: '24 bytes' });

const common = {
  id: s.id.meta({ description: 'event id: the same on every copy of this event (dedupe by it)' }),
  seq: z.number().int().min(1).meta({ description: 'per-device, increasing; the order and the ack cursor' }),
  from,
};

const messageEvent = z
  .object({
    ...common,
    type: z.literal('message'),
    message_id: s.id,
    group_id: s.id.nullable(),
    sent_at: s.timestamp,
    nonce,
    ciphertext,
    file_ids: z.array(s.id),
  })
  .meta({ id: 'MessageEvent', description: 'a new message, its envelope for this device' });

const messageEditedEvent = z
  .object({
    ...common,
    type: z.literal('message.edited'),
    message_id: s.id,
    group_id: s.id.nullable(),
    sent_at: s.timestamp.meta({ description: 'the original send time' }),
    edited_at: s.timestamp,
    nonce,
    ciphertext,
    file_ids: z.array(s.id),
  })
  .meta({ id: 'MessageEditedEvent', description: 'a message was edited: its new envelope for this device' });

const messageDeletedEvent = z
  .object({
    ...common,
    type: z.literal('message.deleted'),
    message_id: s.id,
    group_id: s.id.nullable(),
    sent_at: s.timestamp.meta({ description: 'the original send time' }),
    nonce: z.null(),
    ciphertext: z.null(),
    file_ids: z.array(s.id).max(0),
  })
  .meta({ id: 'MessageDeletedEvent', description: 'a message was deleted; drop it' });

const receiptEvent = z
  .object({
    ...common,
    type: z.literal('receipt'),
    message_id: s.id,
    group_id: s.id.nullable(),
    sent_at: s.timestamp.meta({ description: 'when the receipt was sent' }),
    nonce: z.null(),
    ciphertext: z.null(),
    file_ids: z.array(s.id).max(0),
    receipt: z.enum(['delivered', 'read']),
  })
  .meta({ id: 'ReceiptEvent', description: '`from` received or read your message `message_id`' });

const groupUpdatedEvent = z
  .object({
    ...common,
    type: z.literal('group.updated'),
    message_id: z.null(),
    group_id: s.id,
    sent_at: s.timestamp.meta({ description: 'when the membership changed' }),
    nonce: z.null(),
    ciphertext: z.null(),
    file_ids: z.array(s.id).max(0),
  })
  .meta({
    id: 'GroupUpdatedEvent',
    description: '`from` changed the membership of `group_id`; re-read it with GET /api/groups/{group_id}',
  });

const byType = {
  message: 'MessageEvent',
  'message.edited': 'MessageEditedEvent',
  'message.deleted': 'MessageDeletedEvent',
  receipt: 'ReceiptEvent',
  'group.updated': 'GroupUpdatedEvent',
} satisfies Record<EventType, string>;

export const event = z
  .discriminatedUnion('type', [
    messageEvent,
    messageEditedEvent,
    messageDeletedEvent,
    receiptEvent,
    groupUpdatedEvent,
  ])
  .meta({
    id: 'Event',
    description:
      'What a device receives by pull, stream or push, one schema per `type`. Delivery is at least once: dedupe by `id`, order by `seq`.',
    discriminator: {
      propertyName: 'type',
      mapping: Object.fromEntries(
        Object.entries(byType).map(([type, id]) => [type, `#/components/schemas/${id}`]),
      ),
    },
  });

/** `GET /api/messages`: a page of the device's inbox. */
export const eventPage = z
  .object({
    events: z.array(event),
    next_after: s.seq.meta({ description: 'the last returned `seq`, or `after` when the page is empty' }),
    has_more: z.boolean(),
  })
  .meta({ id: 'EventPage' });
