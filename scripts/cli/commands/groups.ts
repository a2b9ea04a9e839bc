import type { Messenger } from '../../../common/client/index.ts';
import { type Cli, UsageError } from '../context.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A group named by id, or by the name of one of your groups (which must be unambiguous). */
export async function groupId(m: Messenger, idOrName: string): Promise<string> {
  if (UUID.test(idOrName)) return idOrName;
  const named = (await m.groups()).filter((g) => g.name === idOrName);
  if (named.length === 1 && named[0]) return named[0].group_id;
  throw new UsageError(
    named.length
      ? `${named.length} of your groups are named "${idOrName}": use the id`
      : `no group of yours is named "${idOrName}"`,
  );
}

export async function group(cli: Cli): Promise<void> {
  const m = await cli.client(true);
  const sub = cli.arg(1, 'group command (create, list, show, add)');
  if (sub === 'create') {
    const name = cli.arg(2, 'group name');
    const id = await m.createGroup(name, cli.positionals.slice(3));
    return cli.out(`created group "${name}" (${id})`, { group_id: id, name });
  }
  if (sub === 'list') {
    const groups = await m.groups();
    if (cli.opt.json) return cli.out('', { groups });
    for (const g of groups) cli.out(`${g.group_id}  "${g.name}"  ${g.member_count} members`, g);
    return;
  }
  if (sub === 'show') {
    const g = await m.group(await groupId(m, cli.arg(2, 'group id or name')));
    const members = g.members.map((u) => u.username).join(', ');
    return cli.out(`"${g.name}" (${g.group_id})  members: ${members}`, g);
  }
  if (sub === 'add') {
    const id = await groupId(m, cli.arg(2, 'group id or name'));
    const username = cli.arg(3, 'username');
    await m.addMember(id, username);
    return cli.out(`added ${username}`, { added: true, group_id: id, username });
  }
  throw new UsageError(`unknown group command: ${sub}`);
}
