import { homedir } from 'node:os';
import { join } from 'node:path';

export {
  readProfileFile as readProfile,
  writeProfileFile as writeProfile,
} from '../../common/client/profile-file.ts';

export function defaultProfilePath(): string {
  return join(homedir(), '.messenger', 'profile.json');
}
