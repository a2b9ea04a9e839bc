import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { ApiError, type ClientOptions, Messenger, type Received } from '../common/client/index.ts';
import { loadCliEnv } from '../common/config.ts';
import { eventJson, eventLine } from './cli/format.ts';
import { askPassword } from './cli/password.ts';
import { defaultProfilePath, readProfile, writeProfile } from './cli/profile.ts';
import { startPushSink } from './cli/sink.ts';

const USAGE = `usage: npm run cli -- <command> [options]

  register <username>            create an account and log this device in
  login <username>               log in (resumes the saved device of that user)
  whoami                         the saved identity
  send <username> <text>         send an end-to-end encrypted message
  send --group <id> <text>       … to a group   (--file <path> attaches a file, repeatable)
  inbox                          pull, decrypt, print and acknowledge waiting events (--no-ack, --limit n)
  listen                         stream events live (WebSocket), decrypted; Ctrl-C stops
  sink [--port p]                receive signed pushes locally, verify and print them
                                 (--set-address points this device's pushes at the sink;
                                  --public-url when the server reaches it under another URL; --count n)
  devices                        list your devices
  presence <user…>               which of them have a live stream open
  group create <name> [user…]    create a group;  group list | group show <id> | group add <id> <user>
  logout                         end the session (the profile keeps the device for the next login)

options: --url <base> (default https://127.0.0.1:8443), --profile <file> (default
  ~/.messenger/profile.json, or MESSENGER_PROFILE), --password <pw> (or MESSENGER_PASSWORD, else a
  prompt), --ca <pem> (trust this certificate; or MESSENGER_CA), --insecure (accept any certificate),
  --json (machine-readable output), --device-name <name>`;

class UsageError extends Error {}

const { values: opt, positionals } = (() => {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        url: { type: 'string' },
        profile: { type: 'string' },
        password: { type: 'string' },
        ca: { type: 'string' },
        insecure: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
        'device-name': { type: 'string' },
        group: { type: 'string' },
        file: { type: 'string', multiple: true },
        limit: { type: 'string' },
        'no-ack': { type: 'boolean', default: false },
        port: { type: 'string' },
        host: { type: 'string' },
        'set-address': { type: 'boolean', default: false },
        'public-url': { type: 'string' },
        count: { type: 'string' },
      },
    });
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message.split('.')[0]} (see --help)\n`);
    process.exit(2);
  }
})();

const env = loadCliEnv();
const profilePath = opt.profile ?? env.MESSENGER_PROFILE ?? defaultProfilePath();

function out(human: string, json: unknown): void {
  process.stdout.write(`${opt.json ? JSON.stringify(json) : human}\n`);
}

function intOption(name: 'limit' | 'port' | 'count', fallback: number): number {
  const raw = opt[name];
  if (raw === undefined) return fallback;
  if (!/^\d{1,6}$/.test(raw)) throw new UsageError(`--${name} must be a non-negative integer`);
  return Number(raw);
}

function arg(i: number, what: string): string {
  const v = positionals[i];
  if (!v) throw new UsageError(`missing ${what}`);
  return v;
}

async function client(needLogin: boolean): Promise<Messenger> {
  const saved = await readProfile(profilePath);
  const baseUrl = opt.url ?? saved?.base_url ?? env.MESSENGER_URL ?? 'https://127.0.0.1:8443';
  const caFile = opt.ca ?? env.MESSENGER_CA;
  const tls: Partial<ClientOptions> = {
    ...(opt.insecure && { insecure: true }),
    ...(caFile && { ca: readFileSync(caFile) }),
  };
  if (needLogin && !saved?.token)
    throw new UsageError(`not logged in (profile ${profilePath}): run login first`);
  return saved
    ? Messenger.fromProfile({ ...saved, base_url: baseUrl }, tls)
    : new Messenger({ baseUrl, ...tls });
}

async function password(): Promise<string> {
  return opt.password ?? env.MESSENGER_PASSWORD ?? (await askPassword('password: '));
}

async function login(m: Messenger, username: string): Promise<void> {
  const res = await m.login(username, await password(), {
    ...(opt['device-name'] && { deviceName: opt['device-name'] }),
  });
  await writeProfile(profilePath, m.toProfile());
  out(`logged in as ${m.identity.username} on device ${res.device_id} (profile ${profilePath})`, {
    user_id: res.user_id,
    username: m.identity.username,
    device_id: res.device_id,
    expires_at: res.expires_at,
    profile: profilePath,
  });
}

function printEvent(e: Received): void {
  out(eventLine(e), eventJson(e));
}

const commands: Record<string, () => Promise<void>> = {
  async register() {
    const m = await client(false);
    const username = arg(1, 'username');
    const pw = await password();
    const user = await m.register(username, pw);
    if (!opt.json) out(`registered ${user.username} (${user.user_id})`, user);
    opt.password = pw;
    await login(m, user.username);
  },
  async login() {
    await login(await client(false), arg(1, 'username'));
  },
  async whoami() {
    const m = await client(true);
    const { username, userId, deviceId } = m.identity;
    out(`${username} (${userId}), device ${deviceId} at ${m.http.baseUrl}`, {
      username,
      user_id: userId,
      device_id: deviceId,
      url: m.http.baseUrl,
    });
  },
  async send() {
    const m = await client(true);
    const target = opt.group ? { group: opt.group } : arg(1, 'recipient username');
    const text = positionals.slice(opt.group ? 1 : 2).join(' ');
    if (!text && !opt.file?.length) throw new UsageError('missing message text');
    const files = [];
    for (const path of opt.file ?? [])
      files.push(await m.uploadFile(readFileSync(path), { name: basename(path) }));
    const sent = await m.send(target, text, { files });
    const to = typeof target === 'string' ? target : `group ${target.group}`;
    out(`sent ${sent.message_id} to ${to}`, sent);
  },
  async inbox() {
    const m = await client(true);
    const limit = intOption('limit', 100);
    let count = 0;
    for await (const page of m.pages({ limit })) {
      for (const e of page.events) printEvent(e);
      count += page.events.length;
      if (page.events.length && !opt['no-ack']) await m.ack(page.next_after);
    }
    if (!count && !opt.json) out('no new messages', null);
  },
  async listen() {
    const m = await client(true);
    const stop = new AbortController();
    process.once('SIGINT', () => stop.abort());
    process.once('SIGTERM', () => stop.abort());
    if (!opt.json) process.stderr.write(`listening as ${m.identity.username} (Ctrl-C stops)\n`);
    for await (const e of m.stream({
      signal: stop.signal,
      onState: (s) => {
        if (s === 'closed' && !stop.signal.aborted && !opt.json) process.stderr.write('reconnecting…\n');
      },
    })) {
      printEvent(e);
    }
  },
  async sink() {
    const m = await client(true);
    const host = opt.host ?? '127.0.0.1';
    const max = intOption('count', 0);
    const serverKey = await m.serverKey();
    let seen = 0;
    const sink = await startPushSink(m, {
      host,
      port: intOption('port', 0),
      serverKey,
      onEvent(e) {
        printEvent(e);
        if (max && ++seen >= max) void finish();
      },
      onReject: (reason) => process.stderr.write(`rejected push: ${reason}\n`),
    });
    const url = opt['public-url'] ?? `http://${host}:${sink.port}/push`;
    if (opt['set-address']) await m.setAddress(url);
    out(
      `sink on http://${host}:${sink.port}/push${opt['set-address'] ? ', pushes for this device go there' : ''}`,
      {
        sink: `http://${host}:${sink.port}/push`,
        address_set: opt['set-address'],
      },
    );
    let finished = false;
    const finish = async () => {
      if (finished) return;
      finished = true;
      sink.server.close();
      sink.server.closeAllConnections();
      // A sink that stops clears the address it set, so pushes do not pile up against a closed port.
      if (opt['set-address']) await m.setAddress(null).catch(() => {});
    };
    process.once('SIGINT', () => void finish());
    process.once('SIGTERM', () => void finish());
    await new Promise((resolve) => sink.server.once('close', resolve));
  },
  async presence() {
    const m = await client(true);
    const users = positionals.slice(1);
    if (!users.length) throw new UsageError('missing usernames');
    const online = await m.presence(users);
    out(online.length ? `online: ${online.join(', ')}` : 'none of them is online', { online });
  },
  async devices() {
    const m = await client(true);
    const list = await m.devices();
    if (opt.json) return out('', { devices: list });
    for (const d of list) {
      const flags = [d.current && 'this device', d.signed_in && 'signed in', d.has_address && 'push'].filter(
        Boolean,
      );
      out(
        `${d.device_id}  ${d.name ?? '(unnamed)'}  last active ${d.last_active_at}  ${flags.join(', ')}`,
        d,
      );
    }
  },
  async group() {
    const m = await client(true);
    const sub = arg(1, 'group command (create, list, show, add)');
    if (sub === 'create') {
      const id = await m.createGroup(arg(2, 'group name'), positionals.slice(3));
      return out(`created group ${id}`, { group_id: id });
    }
    if (sub === 'list') {
      const groups = await m.groups();
      if (opt.json) return out('', { groups });
      for (const g of groups) out(`${g.group_id}  ${g.name}`, g);
      return;
    }
    if (sub === 'show') {
      const g = await m.group(arg(2, 'group id'));
      return out(`${g.group_id}  ${g.name}  members: ${g.members.map((u) => u.username).join(', ')}`, g);
    }
    if (sub === 'add') {
      await m.addMember(arg(2, 'group id'), arg(3, 'username'));
      return out('added', { added: true });
    }
    throw new UsageError(`unknown group command: ${sub}`);
  },
  async logout() {
    const m = await client(true);
    await m.logout();
    await writeProfile(profilePath, m.toProfile());
    out('logged out (the device stays registered; login resumes it)', { logged_out: true });
  },
};

async function main(): Promise<number> {
  const name = positionals[0];
  if (opt.help || !name) {
    process.stdout.write(`${USAGE}\n`);
    return name || opt.help ? 0 : 2;
  }
  const command = commands[name];
  if (!command) throw new UsageError(`unknown command: ${name}`);
  await command();
  return 0;
}

function explain(err: unknown): { message: string; code: number } {
  if (err instanceof UsageError) return { message: `${err.message} (see --help)`, code: 2 };
  if (err instanceof ApiError) return { message: `${err.message} (${err.status} ${err.error})`, code: 1 };
  const e = err as Error & { code?: string; cause?: { code?: string; message?: string } };
  const code = e.cause?.code ?? e.code ?? '';
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) {
    return {
      message: `the server certificate is not trusted (${code}): pass --ca <pem> or --insecure`,
      code: 1,
    };
  }
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND') {
    return { message: `cannot reach the server (${code}): is the stack running? see --url`, code: 1 };
  }
  return { message: e.message || String(err), code: 1 };
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    const { message, code } = explain(err);
    process.stderr.write(`error: ${message}\n`);
    process.exit(code);
  },
);
