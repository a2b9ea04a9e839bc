import { Messenger, type SavedProfile } from '../../common/client/index.ts';
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
