import { checkKeyPair, type KeyPair, newKeyPair } from './crypto.ts';
import { type ClientOptions, Http } from './http.ts';
import { readProfileFile, writeProfileFile } from './profile-file.ts';
import type { DeviceKey, LoginResult, Registered } from './types.ts';

/**
 * Everything needed to come back as the same device: identity, token and the X25519 key
 * pair. Plain JSON; keep it private (the CLI writes it with mode 0600).
 */
export interface SavedProfile {
  version: 1;
  base_url: string;
  user_id: string;
  username: string;
  device_id: string;
  token: string | null;
  expires_at: string | null;
  public_key: string;
  secret_key: string;
}

export interface Identity {
  userId: string;
  username: string;
  deviceId: string;
  keys: KeyPair;
}

export interface LoginOptions {
  /** Resume this device (needs the same key pair); defaults to the saved profile's device. */
  deviceId?: string;
  keys?: KeyPair;
  deviceName?: string;
  /** Where this device wants pushes. */
  userAddress?: string;
  /** Register a new device even though a profile for this user is loaded. */
  newDevice?: boolean;
}

/** The logged-in device: transport plus identity and keys. */
export class Session {
  readonly http: Http;
  /**
   * Devices each conversation was last encrypted for (`user:<name>` / `group:<id>`), so a send
   * costs one request; the server's 409 `device_mismatch` corrects a stale entry.
   */
  readonly recipients = new Map<string, DeviceKey[]>();
  private current: SavedProfile | null = null;
  /** Where the device is kept across runs (`ClientOptions.profile`), if anywhere. */
  readonly profilePath: string | undefined;

  constructor(opts: ClientOptions, saved?: SavedProfile) {
    this.http = new Http(opts);
    this.profilePath = opts.profile;
    const kept = saved ?? (opts.profile ? readProfileFile(opts.profile) : null);
    if (kept) this.restore(kept);
  }

  /** The identity of this device (also after logout, until another login); throws before any login. */
  get identity(): Identity {
    const p = this.current;
    if (!p) throw new Error('not logged in');
    return {
      userId: p.user_id,
      username: p.username,
      deviceId: p.device_id,
      keys: { public_key: p.public_key, secret_key: p.secret_key },
    };
  }

  get loggedIn(): boolean {
    return !!this.current?.token;
  }

  register(
    username: string,
    password: string,
    extra: { display_name?: string; phone_number?: string } = {},
  ): Promise<Registered> {
    return this.http.json<Registered>('POST', '/api/users', {
      auth: false,
      body: { username, password, ...extra },
    });
  }

  /**
   * Opens a session. A new device gets a fresh key pair; a device saved earlier (same user)
   * is resumed with its `device_id` and keys, so whatever was queued for it arrives.
   */
  async login(username: string, password: string, opts: LoginOptions = {}): Promise<LoginResult> {
    const saved = this.current;
    const sameUser = saved && saved.username === username.toLowerCase() && !opts.newDevice;
    const deviceId = opts.deviceId ?? (sameUser ? saved.device_id : undefined);
    const keys =
      opts.keys ??
      (sameUser && deviceId === saved.device_id
        ? { public_key: saved.public_key, secret_key: saved.secret_key }
        : newKeyPair());
    checkKeyPair(keys);
    const res = await this.http.json<LoginResult>('POST', '/api/login', {
      auth: false,
      body: {
        username,
        password,
        public_key: keys.public_key,
        ...(deviceId && { device_id: deviceId }),
        ...(opts.deviceName && { device_name: opts.deviceName }),
        ...(opts.userAddress && { user_address: opts.userAddress }),
      },
    });
    this.restore({
      version: 1,
      base_url: this.http.baseUrl,
      user_id: res.user_id,
      username: username.toLowerCase(),
      device_id: res.device_id,
      token: res.token,
      expires_at: res.expires_at,
      ...keys,
    });
    this.save();
    return res;
  }

  /** Ends the session and stops pushes; the profile keeps the device and keys for a later login. */
  async logout(): Promise<void> {
    await this.http.json('POST', '/api/logout');
    if (this.current) this.current = { ...this.current, token: null, expires_at: null };
    this.http.token = null;
    this.save();
  }

  /** Writes the profile file (0600) when the client was made with `profile`. */
  private save(): void {
    if (this.profilePath && this.current) writeProfileFile(this.profilePath, this.current);
  }

  /** A JSON-serialisable snapshot to resume from later (`new Messenger(opts, profile)`). */
  toProfile(): SavedProfile {
    if (!this.current) throw new Error('nothing to save: not logged in');
    return { ...this.current };
  }

  private restore(p: SavedProfile): void {
    if (p.version !== 1) throw new Error(`unsupported profile version ${String(p.version)}`);
    checkKeyPair(p);
    if (this.current?.device_id !== p.device_id) this.recipients.clear();
    this.current = { ...p };
    this.http.token = p.token;
  }
}
