import * as devices from './devices.ts';
import * as files from './files.ts';
import * as groups from './groups.ts';
import type { ClientOptions } from './http.ts';
import * as messages from './messages.ts';
import type { FileRef } from './payload.ts';
import { type PresenceOptions, watchPresence } from './presence.ts';
import { type SavedProfile, Session } from './session.ts';
import { type StreamOptions, stream } from './stream.ts';
import type { Event, ReceiptType } from './types.ts';
import { type HeaderBag, type VerifyOptions, verifyPush } from './webhooks.ts';

export { b64, type KeyPair, newKeyPair, unb64 } from './crypto.ts';
export { ApiError, type ClientOptions } from './http.ts';
export { openEvent, type Received, type SendOptions, type Target } from './messages.ts';
export { type Content, decodePayload, encodePayload, type FileRef } from './payload.ts';
export type { PresenceOptions, PresenceUpdate, PresenceWatch } from './presence.ts';
export { readProfileFile, writeProfileFile } from './profile-file.ts';
export type { Identity, LoginOptions, SavedProfile } from './session.ts';
export type { StreamOptions } from './stream.ts';
export type * from './types.ts';
export {
  type HeaderBag,
  signPush,
  type VerifyOptions,
  verifyPush,
  WebhookVerificationError,
} from './webhooks.ts';

/** Options of `receivePush`: the verification's, plus the server key when you already have it. */
export interface ReceivePushOptions extends VerifyOptions {
  /** base64 ed25519 key; fetched once from `GET /api/server-key` (and cached) when omitted. */
  serverKey?: string;
}

/**
 * A messenger client: one logged-in device.
 *
 * ```ts
 * const m = new Messenger({ baseUrl: 'https://127.0.0.1:8443', ca, profile: 'alice.json' });
 * await m.login('alice', 'correct horse battery');   // resumes the device kept in alice.json
 * await m.send('bob', 'hello bob');
 * ```
 */
export class Messenger extends Session {
  private pushKey: Promise<string> | undefined;

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
  /**
   * Live presence of these contacts (`presence.subscribe` on a stream socket): each one's state at
   * once, then every change; `subscribePresence(names)` on the iterator replaces the set.
   */
  watchPresence = (usernames: string[], opts?: PresenceOptions) => watchPresence(this, usernames, opts);

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
  /** Opens an event's ciphertext with this device's key (pull, stream and receivePush do it for you). */
  open = (event: Event) => messages.openEvent(this, event);

  /**
   * A push as your webhook endpoint received it, verified (Standard Webhooks, ed25519: see
   * `verifyPush`) and decrypted in one call. Pass the raw body bytes. Throws
   * WebhookVerificationError when it does not verify; `content` is null when it does not open.
   */
  receivePush = async (
    headers: HeaderBag,
    rawBody: string | Uint8Array,
    opts: ReceivePushOptions = {},
  ): Promise<messages.Received> => {
    const { serverKey, ...verify } = opts;
    this.pushKey ??= this.serverKey();
    const key =
      serverKey ??
      (await this.pushKey.catch((err: unknown) => {
        this.pushKey = undefined;
        throw err;
      }));
    return messages.openEvent(this, verifyPush(headers, rawBody, key, verify));
  };

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
