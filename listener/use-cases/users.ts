import { randomUUID } from 'node:crypto';
import { isUniqueViolation } from '../../common/db/index.ts';
import { hashPassword, verifyPassword } from '../crypto/password.ts';
import { type DeviceKey, deviceKeysByUser } from '../db/devices.ts';
import { endOtherSessions } from '../db/sessions.ts';
import {
  deleteUser,
  findUserById,
  findUserByUsername,
  insertUser,
  type UserRow,
  updateUser,
} from '../db/users.ts';
import type { Deps } from '../deps.ts';
import { badRequest, conflict, forbidden, notFound, unauthorized } from '../errors.ts';
import { withEvents } from '../messaging/append.ts';
import { fanOut, groupUpdated } from '../messaging/events.ts';
import type { Actor } from './caller.ts';
import { withinPasswordBudget } from './password-budget.ts';

export interface Profile {
  user_id: string;
  username: string;
  display_name: string | null;
  phone_number: string | null;
}

export interface DirectoryEntry {
  user_id: string;
  username: string;
  display_name: string | null;
  devices: DeviceKey[];
}

const presentProfile = (u: UserRow): Profile => ({
  user_id: u.id,
  username: u.username,
  display_name: u.display_name,
  phone_number: u.phone_number,
});

async function me(deps: Deps, actor: Actor): Promise<UserRow> {
  const user = await findUserById(deps.db, actor.auth.userId);
  if (!user) throw unauthorized();
  return user;
}

/**
 * The password check of the account changes. It shares the failure budgets of login (per place
 * and per username), so a stolen token cannot brute-force the password here.
 */
async function requirePassword(deps: Deps, actor: Actor, password: string): Promise<UserRow> {
  const user = await me(deps, actor);
  const ok = await withinPasswordBudget(
    deps,
    actor.clientIp,
    user.username,
    () => verifyPassword(password, user.password_hash),
    'too many wrong passwords for this user, retry later',
  );
  if (!ok) throw forbidden('wrong password', 'wrong_password');
  return user;
}

export async function register(
  deps: Deps,
  input: { username: string; password: string; phoneNumber: string | null; displayName: string | null },
): Promise<{ user_id: string; username: string }> {
  const id = randomUUID();
  const password_hash = await hashPassword(input.password, deps.config.PASSWORD_HASH_COST);
  try {
    await insertUser(deps.db, {
      id,
      username: input.username,
      password_hash,
      phone_number: input.phoneNumber,
      display_name: input.displayName,
    });
  } catch (err) {
    if (isUniqueViolation(err, 'users_username_key')) throw conflict('username_taken', 'username is taken');
    if (isUniqueViolation(err, 'users_phone_number_key')) {
      throw conflict('phone_number_taken', 'phone number is taken');
    }
    throw err;
  }
  return { user_id: id, username: input.username };
}

/** A user and their device keys: what a sender encrypts for. */
export async function lookUpUser(deps: Deps, username: string): Promise<DirectoryEntry> {
  const user = await findUserByUsername(deps.db, username);
  if (!user) throw notFound('no such user');
  const devices = (await deviceKeysByUser(deps.db, [user.id])).get(user.id) ?? [];
  return { user_id: user.id, username: user.username, display_name: user.display_name, devices };
}

export async function ownProfile(deps: Deps, actor: Actor): Promise<Profile> {
  return presentProfile(await me(deps, actor));
}

/** Changes the display name and/or the password; a new password ends every other session. */
export async function updateProfile(
  deps: Deps,
  actor: Actor,
  input: { displayName?: string | null | undefined; password?: string; currentPassword?: string },
): Promise<Profile> {
  let user = await me(deps, actor);
  let password_hash: string | undefined;
  if (input.password !== undefined) {
    if (input.currentPassword === undefined) {
      throw badRequest('current_password is required to change the password', [
        { field: 'body.current_password', problem: 'required' },
      ]);
    }
    user = await requirePassword(deps, actor, input.currentPassword);
    password_hash = await hashPassword(input.password, deps.config.PASSWORD_HASH_COST);
  }
  await deps.db.transaction(async (trx) => {
    await updateUser(trx, user.id, {
      ...(input.displayName !== undefined && { display_name: input.displayName }),
      ...(password_hash && { password_hash }),
    });
    if (password_hash) await endOtherSessions(trx, user.id, actor.auth.deviceId);
  });
  // The other sessions end on every listener before this answers.
  if (password_hash) await deps.cache.revoke(user.id);
  return ownProfile(deps, actor);
}

/**
 * Deletes the account: sessions, devices and undelivered inboxes go with it; the other members
 * of its groups get `group.updated`, and a group left empty is deleted.
 */
export async function deleteAccount(deps: Deps, actor: Actor, input: { password: string }): Promise<void> {
  const user = await requirePassword(deps, actor, input.password);
  await withEvents(deps, actor.requestId, async (trx, append) => {
    const groups = await deleteUser(trx, user.id);
    // The remaining members of each group learn that its membership changed, as when one leaves.
    const devices = await deviceKeysByUser(trx, [...new Set(groups.flatMap((g) => g.members))]);
    const events = groups.flatMap((g) =>
      fanOut(
        g.members.flatMap((u) => (devices.get(u) ?? []).map((d) => d.device_id)),
        groupUpdated(actor.auth, g.groupId),
      ),
    );
    await append(events);
  });
  await deps.cache.revoke(user.id);
}
