import type { Received } from '../../common/client/index.ts';

/** What `--json` prints per event: one JSON object per line. */
export function eventJson(e: Received) {
  return {
    seq: e.seq,
    id: e.id,
    type: e.type,
    message_id: e.message_id,
    group_id: e.group_id,
    sent_at: e.sent_at,
    from: e.from.username,
    from_device: e.from.device_id,
    text: e.content?.text ?? null,
    data: e.content?.data ? Buffer.from(e.content.data).toString('base64') : null,
    files: e.content?.files ?? [],
    decrypted: e.content !== null,
    ...(e.edited_at && { edited_at: e.edited_at }),
    ...(e.receipt && { receipt: e.receipt }),
  };
}

function body(e: Received): string {
  if (!e.content) return '(cannot decrypt)';
  const parts: string[] = [];
  if (e.content.text !== null) parts.push(e.content.text);
  if (e.content.data) parts.push(`(${e.content.data.length} bytes)`);
  for (const f of e.content.files) parts.push(`[file ${f.name ?? f.file_id}, ${f.size} bytes]`);
  return parts.join(' ');
}

/** One human line per event. */
export function eventLine(e: Received): string {
  const when = e.sent_at.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  const where = e.group_id ? ` in group ${e.group_id}` : '';
  const who = e.from.username;
  switch (e.type) {
    case 'message':
      return `[${when}] ${who}${where}: ${body(e)}`;
    case 'message.edited':
      return `[${when}] ${who}${where} edited ${e.message_id}: ${body(e)}`;
    case 'message.deleted':
      return `[${when}] ${who}${where} deleted ${e.message_id}`;
    case 'receipt':
      return `[${when}] ${who} ${e.receipt ?? 'received'} ${e.message_id}`;
    case 'group.updated':
      return `[${when}] ${who} updated group ${e.group_id}`;
    default:
      return `[${when}] ${who}: ${String(e.type)}`;
  }
}
