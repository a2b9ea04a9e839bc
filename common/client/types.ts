import type { Event } from '../events.ts';

export type { Event, EventType } from '../events.ts';

/** One device of the directory: what a sender encrypts for. */
export interface DeviceKey {
  device_id: string;
  public_key: string;
}

export interface DirectoryEntry {
  user_id: string;
  username: string;
  display_name: string | null;
  devices: DeviceKey[];
}

export interface Profile {
  user_id: string;
  username: string;
  display_name: string | null;
  phone_number: string | null;
}

export interface Registered {
  user_id: string;
  username: string;
}

export interface LoginResult {
  user_id: string;
  device_id: string;
  token: string;
  expires_at: string;
}

export interface Device {
  device_id: string;
  name: string | null;
  public_key: string;
  created_at: string;
  last_active_at: string;
  last_ip: string | null;
  user_agent: string | null;
  has_address: boolean;
  signed_in: boolean;
  current: boolean;
}

export interface Sent {
  message_id: string;
  sent_at: string;
}

export interface Edited {
  message_id: string;
  sent_at: string;
  edited_at: string;
}

export interface Page<E = Event> {
  events: E[];
  next_after: number;
  has_more: boolean;
}

export interface GroupMember {
  user_id: string;
  username: string;
  devices: DeviceKey[];
}

export interface Group {
  group_id: string;
  name: string;
  /** null once the owner deleted their account. */
  owner_id: string | null;
  is_public: boolean;
  members: GroupMember[];
}

/** A group as listed (`GET /api/groups`). */
export interface GroupSummary {
  group_id: string;
  name: string;
  owner_id: string | null;
  is_public: boolean;
  member_count: number;
}

/** One page of a public-group search; pass `next_cursor` back for the next (null on the last). */
export interface GroupPage {
  groups: GroupSummary[];
  next_cursor: string | null;
}

export interface Uploaded {
  file_id: string;
  size: number;
  sha256: string;
}

/** 409 `device_mismatch`: what the server expected instead. */
export interface DeviceMismatch {
  missing_devices: { user_id: string; device_id: string; public_key: string }[];
  extra_devices: string[];
}

export type ReceiptType = 'delivered' | 'read';
