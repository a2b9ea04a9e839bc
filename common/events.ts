/** What a device receives by push, pull or stream (docs/API.md#events; schemas: listener/http/event-schemas.ts). */
export type EventType = 'message' | 'message.edited' | 'message.deleted' | 'receipt' | 'group.updated';

export interface EventSender {
  user_id: string;
  username: string;
  device_id: string;
  public_key: string;
}

export interface Event {
  id: string;
  seq: number;
  type: EventType;
  message_id: string | null;
  group_id: string | null;
  sent_at: string;
  from: EventSender;
  nonce: string | null;
  ciphertext: string | null;
  file_ids: string[];
  edited_at?: string;
  receipt?: 'delivered' | 'read';
}

/** An event for one device before it has its per-device `id` and `seq`. */
export interface PendingEvent {
  device_id: string;
  event: Omit<Event, 'id' | 'seq'>;
}
