import type { Received } from '../../common/client/index.ts';

type Roster = { name: string; members: string[] };

/** What the CLI knows around an event besides the event itself. */
export interface EventContext {
  groupName?: string | undefined;
  /** For `group.updated`: the roster before (as last seen, if ever) and after (null: we are out). */
  change?: { before: Roster | undefined; after: Roster | null } | undefined;
  /** For pushes: the signature verified against the server key. */
  verified?: boolean | undefined;
}

/** Who joined and who left, from two rosters. */
function rosterChange(change: NonNullable<EventContext['change']>) {
  const before = new Set(change.before?.members ?? []);
  const after = new Set(change.after?.members ?? []);
  return {
    joined: change.before ? [...after].filter((u) => !before.has(u)) : [],
    left: change.after ? [...before].filter((u) => !after.has(u)) : [],
    removed_me: change.after === null,
  };
}

/** What `--json` prints per event: one JSON object per line. */
export function eventJson(e: Received, ctx: EventContext = {}) {
  return {
    seq: e.seq,
    id: e.id,
    type: e.type,
    message_id: e.message_id,
    group_id: e.group_id,
    ...(e.group_id && { group_name: ctx.groupName ?? null }),
    sent_at: e.sent_at,
    from: e.from.username,
    from_device: e.from.device_id,
    text: e.content?.text ?? null,
    data: e.content?.data ? Buffer.from(e.content.data).toString('base64') : null,
    files: e.content?.files ?? [],
    decrypted: e.content !== null,
    ...(e.edited_at && { edited_at: e.edited_at }),
    ...(e.receipt && { receipt: e.receipt }),
    ...(ctx.change && {
      members: ctx.change.after?.members ?? null,
      ...rosterChange(ctx.change),
    }),
    ...(ctx.verified !== undefined && { verified: ctx.verified }),
  };
}

function body(e: Received): string {
  if (!e.content) return '(cannot decrypt)';
  const parts: string[] = [];
  if (e.content.text !== null) parts.push(e.content.text);
  if (e.content.data) parts.push(`(${e.content.data.length} bytes)`);
  for (const f of e.content.files) parts.push(`[file ${f.name ?? f.file_id}, ${f.size} bytes]`);
  if (e.content.files.length && e.message_id) parts.push(`(files get ${e.message_id})`);
  return parts.join(' ');
}

const groupLabel = (id: string, name: string | undefined) => (name ? `"${name}"` : id);

function groupChange(e: Received, ctx: EventContext): string {
  const group = groupLabel(e.group_id ?? '', ctx.groupName);
  const who = e.from.username;
  if (!ctx.change) return `${who} updated group ${group}`;
  const { joined, left, removed_me } = rosterChange(ctx.change);
  if (removed_me) return `${who} updated group ${group}: you are no longer a member`;
  if (!ctx.change.before)
    return `${who} updated group ${group}: members ${ctx.change.after?.members.join(', ')}`;
  const what = [
    ...(joined.length ? [`${joined.join(', ')} joined`] : []),
    ...(left.length ? [`${left.join(', ')} left`] : []),
  ];
  return `${who} updated group ${group}: ${what.length ? what.join('; ') : 'no change in members'}`;
}

/** One human line per event. */
export function eventLine(e: Received, ctx: EventContext = {}): string {
  const when = e.sent_at.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  const where = e.group_id ? ` in group ${groupLabel(e.group_id, ctx.groupName)}` : '';
  const who = e.from.username;
  const verified = ctx.verified ? ' (push signature verified)' : '';
  switch (e.type) {
    case 'message':
      return `[${when}] ${who}${where}: ${body(e)}${verified}`;
    case 'message.edited':
      return `[${when}] ${who}${where} edited ${e.message_id}: ${body(e)}${verified}`;
    case 'message.deleted':
      return `[${when}] ${who}${where} deleted ${e.message_id}${verified}`;
    case 'receipt':
      return `[${when}] ${who} ${e.receipt ?? 'received'} ${e.message_id}${verified}`;
    case 'group.updated':
      return `[${when}] ${groupChange(e, ctx)}${verified}`;
    default:
      return `[${when}] ${who}: ${String(e.type)}${verified}`;
  }
}
