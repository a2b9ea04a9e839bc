import { loadConfig } from '../common/config.ts';
import { ensureSigningKey } from '../common/crypto/signing-key.ts';

const { SIGNING_KEY_FILE } = loadConfig();
const created = await ensureSigningKey(SIGNING_KEY_FILE);
console.log(created ? `created signing key ${SIGNING_KEY_FILE}` : `signing key ${SIGNING_KEY_FILE} exists`);
