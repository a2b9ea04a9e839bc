import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ApiError, type ClientOptions, Messenger, type Received } from '../../common/client/index.ts';
import { loadCliEnv } from './config.ts';
import { type EventContext, eventJson, eventLine } from './format.ts';
import { askPassword } from './password.ts';
import { defaultProfilePath, readProfile, writeProfile } from './profile.ts';
import { type CliState, readState, writeState } from './state.ts';

export class UsageError extends Error {}

const OPTIONS = {
  url: { type: 'string' },
  profile: { type: 'string' },
  password: { type: 'string' },
  ca: { type: 'string' },
  insecure: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  force: { type: 'boolean', default: false },
  'device-name': { type: 'string' },
  group: { type: 'string' },
  file: { type: 'string', multiple: true },
  out: { type: 'string' },
  limit: { type: 'string' },
  'no-ack': { type: 'boolean', default: false },
  port: { type: 'string' },
  host: { type: 'string' },
  'set-address': { type: 'boolean', default: false },
  'public-url': { type: 'string' },
  count: { type: 'string' },
  watch: { type: 'boolean', default: false },
} as const;

/** One CLI invocation: its parsed arguments, environment, profile and output. */
export class Cli {
  readonly opt;
  readonly positionals: string[];
  readonly env = loadCliEnv();
  readonly profilePath: string;

  constructor(argv: string[]) {
    const parsed = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
    this.opt = parsed.values;
    this.positionals = parsed.positionals;
    this.profilePath = this.opt.profile ?? this.env.MESSENGER_PROFILE ?? defaultProfilePath();
  }

  out(human: string, json: unknown): void {
    process.stdout.write(`${this.opt.json ? JSON.stringify(json) : human}\n`);
  }

  note(line: string): void {
    if (!this.opt.json) process.stderr.write(`${line}\n`);
  }

  intOption(name: 'limit' | 'port' | 'count', fallback: number): number {
    const raw = this.opt[name];
    if (raw === undefined) return fallback;
    if (!/^\d{1,6}$/.test(raw)) throw new UsageError(`--${name} must be a non-negative integer`);
    return Number(raw);
  }

  arg(i: number, what: string): string {
    const v = this.positionals[i];
    if (!v) throw new UsageError(`missing ${what}`);
    return v;
  }

  async client(needLogin: boolean): Promise<Messenger> {
    const saved = readProfile(this.profilePath);
    const baseUrl = this.opt.url ?? saved?.base_url ?? this.env.MESSENGER_URL ?? 'https://127.0.0.1:8443';
    const caFile = this.opt.ca ?? this.env.MESSENGER_CA;
    const tls: Partial<ClientOptions> = {
      ...(this.opt.insecure && { insecure: true }),
      ...(caFile && { ca: readFileSync(caFile) }),
    };
    if (needLogin && !saved?.token)
      throw new UsageError(`not logged in (profile ${this.profilePath}): run login first`);
    return saved
      ? Messenger.fromProfile({ ...saved, base_url: baseUrl }, tls)
      : new Messenger({ baseUrl, ...tls });
  }

  async password(): Promise<string> {
    return this.opt.password ?? this.env.MESSENGER_PASSWORD ?? (await askPassword('password: '));
  }

  /** Refuses to replace a profile holding another user's device keys, unless --force. */
  guardProfile(username: string): void {
    const saved = readProfile(this.profilePath);
    if (saved && saved.username !== username.toLowerCase() && !this.opt.force) {
      throw new UsageError(
        `profile ${this.profilePath} holds the device keys of ${saved.username}: use another --profile, or --force to replace them`,
      );
    }
  }

  async login(m: Messenger, username: string): Promise<void> {
    const res = await m.login(username, await this.password(), {
      ...(this.opt['device-name'] && { deviceName: this.opt['device-name'] }),
    });
    writeProfile(this.profilePath, m.toProfile());
    this.out(`logged in as ${m.identity.username} on device ${res.device_id} (profile ${this.profilePath})`, {
      user_id: res.user_id,
      username: m.identity.username,
      device_id: res.device_id,
      expires_at: res.expires_at,
      profile: this.profilePath,
    });
  }

  state(): CliState {
    return readState(this.profilePath);
  }

  saveState(state: CliState): void {
    writeState(this.profilePath, state);
  }

  /**
   * Prints one event. Remembers the keys of its attachments (for `files get`) and, for groups,
   * the roster, so that a `group.updated` says who joined or left.
   */
  async printEvent(m: Messenger, e: Received, extra: { verified?: boolean } = {}): Promise<void> {
    const state = this.state();
    const ctx: EventContext = { ...extra };
    if (e.content?.files.length && e.message_id) state.files[e.message_id] = e.content.files;
    if (e.group_id) {
      const before = state.groups[e.group_id];
      if (e.type === 'group.updated') {
        const now = await m.group(e.group_id).catch((err: unknown) => {
          if (err instanceof ApiError && err.status === 404) return null;
          throw err;
        });
        const after = now && { name: now.name, members: now.members.map((u) => u.username).sort() };
        ctx.change = { before, after };
        if (after) state.groups[e.group_id] = after;
        else delete state.groups[e.group_id];
      } else if (!before) {
        const g = await m.group(e.group_id).catch(() => null);
        if (g) state.groups[e.group_id] = { name: g.name, members: g.members.map((u) => u.username).sort() };
      }
      ctx.groupName = state.groups[e.group_id]?.name ?? before?.name;
    }
    this.saveState(state);
    this.out(eventLine(e, ctx), eventJson(e, ctx));
  }
}
