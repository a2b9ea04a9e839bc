import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { type Cli, UsageError } from '../context.ts';
import { groupId } from './groups.ts';

export async function send(cli: Cli): Promise<void> {
  const m = await cli.client(true);
  const target = cli.opt.group
    ? { group: await groupId(m, cli.opt.group) }
    : cli.arg(1, 'recipient username');
  const text = cli.positionals.slice(cli.opt.group ? 1 : 2).join(' ');
  if (!text && !cli.opt.file?.length) throw new UsageError('missing message text');
  const files = [];
  for (const path of cli.opt.file ?? [])
    files.push(await m.uploadFile(readFileSync(path), { name: basename(path) }));
  const sent = await m.send(target, text, { files });
  const to = typeof target === 'string' ? target : `group ${cli.opt.group}`;
  cli.out(`sent ${sent.message_id} to ${to}`, sent);
}

export async function inbox(cli: Cli): Promise<void> {
  const m = await cli.client(true);
  const limit = cli.intOption('limit', 100);
  let count = 0;
  for await (const page of m.pages({ limit })) {
    for (const e of page.events) await cli.printEvent(m, e);
    count += page.events.length;
    if (page.events.length && !cli.opt['no-ack']) await m.ack(page.next_after);
  }
  if (!count && !cli.opt.json) cli.out('no new messages', null);
}

export async function listen(cli: Cli): Promise<void> {
  const m = await cli.client(true);
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());
  cli.note(`listening as ${m.identity.username} (Ctrl-C stops)`);
  for await (const e of m.stream({
    signal: stop.signal,
    onState: (s) => {
      if (s === 'closed' && !stop.signal.aborted) cli.note('reconnecting…');
    },
  })) {
    await cli.printEvent(m, e);
  }
}

/** A name for a received file inside `dir` that does not overwrite anything. */
function freeName(dir: string, wanted: string): string {
  // Only the last path segment of what the sender chose, never a way out of the directory.
  const safe = basename(wanted).replace(/^\.+/, '') || 'file';
  const ext = extname(safe);
  const stem = safe.slice(0, safe.length - ext.length);
  let candidate = join(dir, safe);
  for (let i = 1; existsSync(candidate); i++) candidate = join(dir, `${stem} (${i})${ext}`);
  return candidate;
}

/** `files get <message> [--out dir]`: downloads, checks and decrypts a received message's attachments. */
export async function files(cli: Cli): Promise<void> {
  const sub = cli.arg(1, 'files command (get <message id>)');
  if (sub !== 'get') throw new UsageError(`unknown files command: ${sub}`);
  const messageId = cli.arg(2, 'message id');
  const m = await cli.client(true);
  let refs = cli.state().files[messageId];
  if (!refs) {
    // Not seen yet by inbox/listen/sink: look in the inbox without acknowledging anything.
    for await (const page of m.pages({ limit: 100 })) {
      const e = page.events.find((ev) => ev.message_id === messageId && ev.content?.files.length);
      if (e?.content) {
        refs = e.content.files;
        break;
      }
    }
  }
  if (!refs?.length)
    throw new UsageError(
      `no attachments known for message ${messageId} (read it with inbox or listen first)`,
    );
  const dir = resolve(cli.opt.out ?? '.');
  for (const ref of refs) {
    const bytes = await m.downloadFile(ref);
    const path = freeName(dir, ref.name ?? ref.file_id);
    writeFileSync(path, bytes, { flag: 'wx' });
    cli.out(`saved ${path} (${bytes.length} bytes)`, { path, size: bytes.length, file_id: ref.file_id });
  }
}
