import { Messenger, type SavedProfile } from '../../common/client/index.ts';
import { routes } from '../../listener/routes/index.ts';
import { uniqueName } from '../helpers/people.ts';

export const PASSWORD = 'correct horse battery';

export function newClient(baseUrl: string, profile?: SavedProfile): Messenger {
  return profile ? Messenger.fromProfile(profile, { baseUrl }) : new Messenger({ baseUrl });
}

/** A fresh user with `n` logged-in devices, each its own SDK client. */
export async function newUser(baseUrl: string, n: number, name = uniqueName()): Promise<Messenger[]> {
  const first = newClient(baseUrl);
  await first.register(name, PASSWORD);
  const devices: Messenger[] = [];
  for (let i = 0; i < n; i++) {
    const m = i === 0 ? first : newClient(baseUrl);
    await m.login(name, PASSWORD, { deviceName: `device ${i + 1}` });
    devices.push(m);
  }
  return devices;
}

/** Whether the listener serves a route yet (features land one by one; their tests skip until then). */
export function serves(method: string, path: string): boolean {
  return routes.some((r) => r.method === method && r.path === path);
}
