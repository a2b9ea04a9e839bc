import type { Session } from './session.ts';
import type { Group, GroupPage, GroupSummary } from './types.ts';

const at = (groupId: string) => `/api/groups/${encodeURIComponent(groupId)}`;

export async function createGroup(
  s: Session,
  name: string,
  members: string[],
  opts: { isPublic?: boolean } = {},
): Promise<string> {
  const res = await s.http.json<{ group_id: string }>('POST', '/api/groups', {
    body: { name, members, ...(opts.isPublic !== undefined && { is_public: opts.isPublic }) },
  });
  return res.group_id;
}

/** All of the caller's groups (the server pages them: every page is read). */
export async function listGroups(s: Session): Promise<GroupSummary[]> {
  const all: GroupSummary[] = [];
  let cursor: string | undefined;
  do {
    const page = await s.http.json<GroupPage>('GET', '/api/groups', {
      query: { limit: 100, ...(cursor !== undefined && { cursor }) },
    });
    all.push(...page.groups);
    cursor = page.next_cursor ?? undefined;
  } while (cursor !== undefined);
  return all;
}

/** Public groups whose name contains `q`, one page at a time (`cursor` from the previous page). */
export function publicGroups(
  s: Session,
  q?: string,
  page: { limit?: number; cursor?: string } = {},
): Promise<GroupPage> {
  const query = { public: 'true', q, limit: page.limit, cursor: page.cursor };
  return s.http.json<GroupPage>('GET', '/api/groups', { query });
}

/** A group with its members' devices (what a group message is encrypted for). */
export function getGroup(s: Session, groupId: string): Promise<Group> {
  return s.http.json<Group>('GET', at(groupId));
}

/** The owner adds anyone; anyone may add themself to a public group. */
export async function addMember(s: Session, groupId: string, username: string): Promise<void> {
  await s.http.json('POST', `${at(groupId)}/members`, { body: { username } });
}

/** The owner removes a member; a member removes themself to leave. */
export async function removeMember(s: Session, groupId: string, userId: string): Promise<void> {
  await s.http.json('DELETE', `${at(groupId)}/members/${encodeURIComponent(userId)}`);
}
