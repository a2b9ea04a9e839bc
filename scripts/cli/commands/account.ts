import type { Messenger } from '../../../common/client/index.ts';
import type { Cli } from '../context.ts';
import { UsageError } from '../context.ts';
import { writeProfile } from '../profile.ts';

export async function register(cli: Cli): Promise<void> {
  const username = cli.arg(1, 'username');
  cli.guardProfile(username);
  const m = await cli.client(false);
  const pw = await cli.password();
  const user = await m.register(username, pw);
  if (!cli.opt.json) cli.out(`registered ${user.username} (${user.user_id})`, user);
  cli.opt.password = pw;
  await cli.login(m, user.username);
}

export async function login(cli: Cli): Promise<void> {
  const username = cli.arg(1, 'username');
  cli.guardProfile(username);
  await cli.login(await cli.client(false), username);
}

export async function whoami(cli: Cli): Promise<void> {
  const m = await cli.client(true);
  const { username, userId, deviceId } = m.identity;
  cli.out(`${username} (${userId}), device ${deviceId} at ${m.http.baseUrl}`, {
    username,
    user_id: userId,
    device_id: deviceId,
    url: m.http.baseUrl,
  });
}

export async function logout(cli: Cli): Promise<void> {
  const m = await cli.client(true);
  await m.logout();
  writeProfile(cli.profilePath, m.toProfile());
  cli.out('logged out (the device stays registered; login resumes it)', { logged_out: true });
}

export async function devices(cli: Cli): Promise<void> {
  const m = await cli.client(true);
  const list = await m.devices();
  if (cli.opt.json) return cli.out('', { devices: list });
  for (const d of list) {
    const flags = [d.current && 'this device', d.signed_in && 'signed in', d.has_address && 'push'].filter(
      Boolean,
    );
    cli.out(
      `${d.device_id}  ${d.name ?? '(unnamed)'}  last active ${d.last_active_at}  ${flags.join(', ')}`,
      d,
    );
  }
}

/** `address set <url>` / `address clear`: where this device's pushes go. */
export async function address(cli: Cli): Promise<void> {
  const sub = cli.arg(1, 'address command (set <url>, clear)');
  const m = await cli.client(true);
  if (sub === 'set') {
    const url = cli.arg(2, 'push URL');
    await m.setAddress(url);
    return cli.out(`pushes for this device go to ${url}`, { address: url });
  }
  if (sub === 'clear') {
    await m.setAddress(null);
    return cli.out('push address cleared: events wait in the inbox', { address: null });
  }
  throw new UsageError(`unknown address command: ${sub}`);
}

export async function presence(cli: Cli): Promise<void> {
  const m = await cli.client(true);
  const users = cli.positionals.slice(1);
  if (!users.length) throw new UsageError('missing usernames');
  if (cli.opt.watch) return watchPresence(cli, m, users);
  const online = await m.presence(users);
  cli.out(online.length ? `online: ${online.join(', ')}` : 'none of them is online', { online });
}

/** `presence --watch <user…>`: one line per contact at once, then one per change, until Ctrl-C. */
async function watchPresence(cli: Cli, m: Messenger, users: string[]): Promise<void> {
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());
  cli.note(`watching ${users.join(', ')} (only contacts are shown; Ctrl-C stops)`);
  for await (const p of m.watchPresence(users, {
    signal: stop.signal,
    onState: (s) => {
      if (s === 'closed' && !stop.signal.aborted) cli.note('reconnecting…');
    },
  })) {
    const when = p.since ? ` since ${p.since}` : '';
    cli.out(`${p.username} ${p.online ? 'online' : 'offline'}${when}`, p);
  }
}
