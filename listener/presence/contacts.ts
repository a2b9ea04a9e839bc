import type { Q } from '../../common/db/index.ts';

/**
 * THE CONTACTS RULE (docs/API.md#presence), the only place it is written down in SQL: two users
 * are contacts when they share a group, or when a direct message went from one to the other in
 * either direction (direct_contacts, written by the send statement, one row per direction). A
 * user is their own contact. The relation is symmetric, so the same test answers "which of these
 * names may I see" (a subscription, GET /api/presence) and "which of these subscribers may see
 * me" (a transition fanned out to a listener).
 *
 * `contactOf(column)` is a condition on a uuid column, true when that user is a contact of the user
 * bound as `?` (bind `userArgs(me)`). Written as `IN (subquery)` so PostgreSQL hashes the user's
 * partners once per query (a hashed SubPlan), whatever the number of candidates: its cost is the
 * user's own groups (capped) and contacts, two index ranges, never their message history.
 */
export function contactOf(column: string): string {
  return `(${column} = ?::uuid
    OR ${column} IN (SELECT b.user_id FROM group_members a JOIN group_members b ON b.group_id = a.group_id
                      WHERE a.user_id = ?::uuid)
    OR ${column} IN (SELECT c.contact_id FROM direct_contacts c WHERE c.user_id = ?::uuid))`;
}

/** The bindings of one `contactOf` condition. */
export function userArgs(userId: string): string[] {
  return [userId, userId, userId];
}

/** Of `candidates` (user ids), those that are contacts of `userId`: one query, however many. */
export async function contactsAmong(q: Q, userId: string, candidates: string[]): Promise<Set<string>> {
  if (!candidates.length) return new Set();
  const { rows } = await q.raw<{ rows: { id: string }[] }>(
    `SELECT c.id FROM unnest(?::uuid[]) AS c(id) WHERE ${contactOf('c.id')}`,
    [candidates, ...userArgs(userId)],
  );
  return new Set(rows.map((r) => r.id));
}
