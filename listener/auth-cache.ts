import type { DeviceKey } from './db/devices.ts';
import type { Identity } from './deps.ts';

export interface CachedSession {
  identity: Identity;
  /** ms since epoch, as read or last extended by this listener. */
  expiresAt: number;
  lastActiveAt: number;
}

interface Entry<T> {
  value: T;
  at: number;
}

/** Entries per map at most; past it the cache starts over. */
const MAX_ENTRIES = 100_000;

/**
 * What every authenticated request and every direct send would otherwise read from PostgreSQL
 * (the session behind a token; a user id by username and its device directory), kept briefly in
 * this listener. Correctness comes from invalidation, not from the TTL: every change of a user's
 * sessions or devices (login, logout, device deletion, password change, account deletion) is
 * broadcast on the broker after its commit and applied by every listener on receipt (`invalidate`),
 * and the cache only serves while this listener's subscription to those broadcasts is up
 * (`setLive`; cleared on every connect and disconnect, since broadcasts may have been missed). A
 * read that raced with an invalidation is not kept (the generation check). `ttlMs` is only a
 * safety net (a broadcast that could not be published); 0 turns the cache off.
 */
export class AuthCache {
  private live = false;
  private generation = 0;
  private readonly sessions = new Map<string, Entry<CachedSession>>();
  private readonly devices = new Map<string, Entry<DeviceKey[]>>();
  private readonly usernames = new Map<string, Entry<string>>();
  /** The keys above that belong to each user, so an invalidation touches only that user's entries. */
  private readonly keysOf = new Map<string, { tokens: Set<string>; names: Set<string> }>();
  /** Called by `revoke` to tell the other listeners; set once the broadcast channel exists. */
  announce: (userId: string) => Promise<void> = async () => {};

  private readonly ttlMs: number;

  constructor(ttlMs: number) {
    this.ttlMs = ttlMs;
  }

  /** Whether entries are served (the invalidation subscription is up and the TTL is not 0). */
  get serving(): boolean {
    return this.live;
  }

  setLive(live: boolean): void {
    this.live = live && this.ttlMs > 0;
    this.generation++;
    this.sessions.clear();
    this.devices.clear();
    this.usernames.clear();
    this.keysOf.clear();
  }

  /** A token for `put*`: a read started before an invalidation is not cached after it. */
  mark(): number {
    return this.generation;
  }

  /** Forgets everything about this user (a broadcast arrived, or this listener changed the user). */
  invalidate(userId: string): void {
    this.generation++;
    this.devices.delete(userId);
    const keys = this.keysOf.get(userId);
    this.keysOf.delete(userId);
    for (const token of keys?.tokens ?? []) this.sessions.delete(token);
    for (const name of keys?.names ?? []) this.usernames.delete(name);
  }

  /** After committing a change of this user's sessions or devices, before answering. */
  async revoke(userId: string): Promise<void> {
    this.invalidate(userId);
    await this.announce(userId);
  }

  session(tokenKey: string): CachedSession | undefined {
    const s = this.fresh(this.sessions, tokenKey);
    return s && s.expiresAt > Date.now() ? s : undefined;
  }

  putSession(mark: number, tokenKey: string, s: CachedSession): void {
    if (this.put(this.sessions, mark, tokenKey, s)) this.keys(s.identity.userId).tokens.add(tokenKey);
  }

  userId(username: string): string | undefined {
    return this.fresh(this.usernames, username);
  }

  devicesOf(userId: string): DeviceKey[] | undefined {
    return this.fresh(this.devices, userId);
  }

  putUser(mark: number, username: string, userId: string): void {
    if (this.put(this.usernames, mark, username, userId)) this.keys(userId).names.add(username);
  }

  putDevices(mark: number, userId: string, keys: DeviceKey[]): void {
    this.put(this.devices, mark, userId, keys);
  }

  private fresh<T>(map: Map<string, Entry<T>>, key: string): T | undefined {
    if (!this.live) return undefined;
    const e = map.get(key);
    if (!e) return undefined;
    if (Date.now() - e.at > this.ttlMs) {
      map.delete(key);
      return undefined;
    }
    return e.value;
  }

  private keys(userId: string): { tokens: Set<string>; names: Set<string> } {
    const k = this.keysOf.get(userId) ?? { tokens: new Set<string>(), names: new Set<string>() };
    this.keysOf.set(userId, k);
    return k;
  }

  private put<T>(map: Map<string, Entry<T>>, mark: number, key: string, value: T): boolean {
    if (!this.live || mark !== this.generation) return false;
    map.delete(key);
    map.set(key, { value, at: Date.now() });
    // Past the bound, start over rather than track recency: a refill costs one read per entry.
    if (map.size > MAX_ENTRIES) this.setLive(true);
    return true;
  }
}
