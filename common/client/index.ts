import * as devices from './devices.ts';
import * as files from './files.ts';
import * as groups from './groups.ts';
import type { ClientOptions } from './http.ts';
import * as messages from './messages.ts';
import type { FileRef } from './payload.ts';
import { type SavedProfile, Session } from './session.ts';
import { type StreamOptions, stream } from './stream.ts';
import type { ReceiptType } from './types.ts';

export { b64, type KeyPair, newKeyPair, unb64 } from './crypto.ts';
export { ApiError, type ClientOptions } from './http.ts';
export type { Received, SendOptions, Target } from './messages.ts';
export { type Content, decodePayload, encodePayload, type FileRef } from './payload.ts';
export type { Identity, LoginOptions, SavedProfile } from './session.ts';
export type { StreamOptions } from './stream.ts';
export type * from './types.ts';
export { signPush, type VerifyOptions, verifyPush, WebhookVerificationError } from './webhooks.ts';

/**
 * A messenger client: one logged-in device.
 *
 * ```ts
 * const m = new Messenger({ baseUrl: 'https://127.0.0.1:8443', insecure: true });
 * await m.login('alice', 'correct horse battery');
 * await m.send('bob', 'hello bob');
 * ```
 */
export class Messenger extends Session {
  /** Resume from a saved profile (its token, device and keys). */
  static fromProfile(profile: SavedProfile, opts: Partial<ClientOptions> = {}): Messenger {
    return new Messenger({ baseUrl: profile.base_url, ...opts }, profile);
  }

  // Users and devices
  lookup = (username: string) => devices.lookup(this, username);
  me = () => devices.me(this);
  devices = () => devices.listDevices(this);
  setAddress = (url: string | null) => devices.setAddress(this, url);
  renameDevice = (name: string) => devices.renameDevice(this, name);
  removeDevice = (deviceId: string) => devices.removeDevice(this, deviceId);
  serverKey = () => devices.serverKey(this);
  presence = (usernames: string[]) => devices.presence(this, usernames);

  // Messages
  send = (to: messages.Target, body: string | Uint8Array, opts?: messages.SendOptions) =>
    messages.send(this, to, body, opts);
  edit = (
    messageId: string,
    body: string | Uint8Array,
    opts?: { target?: messages.Target; files?: FileRef[] },
  ) => messages.edit(this, messageId, body, opts);
  deleteMessage = (messageId: string) => messages.deleteMessage(this, messageId);
  receipt = (messageId: string, type: ReceiptType) => messages.sendReceipt(this, messageId, type);
  pull = (opts?: { after?: number; limit?: number }) => messages.pull(this, opts);
  pages = (opts?: { after?: number; limit?: number }) => messages.pages(this, opts);
  ack = (upTo: number) => messages.ack(this, upTo);
  stream = (opts?: StreamOptions) => stream(this, opts);

  // Groups
  createGroup = (name: string, members: string[], opts?: { isPublic?: boolean }) =>
    groups.createGroup(this, name, members, opts);
  groups = () => groups.listGroups(this);
  publicGroups = (q?: string, page?: { limit?: number; cursor?: string }) =>
    groups.publicGroups(this, q, page);
  group = (groupId: string) => groups.getGroup(this, groupId);
  addMember = (groupId: string, username: string) => groups.addMember(this, groupId, username);
  removeMember = (groupId: string, userId: string) => groups.removeMember(this, groupId, userId);

  // Files
  uploadFile = (bytes: Uint8Array, meta?: { name?: string; type?: string }) =>
    files.uploadFile(this, bytes, meta);
  downloadFile = (ref: FileRef) => files.downloadFile(this, ref);
}

export { Session };
