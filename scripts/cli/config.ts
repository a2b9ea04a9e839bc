import { z } from 'zod';
import { parseEnv } from '../../common/config.ts';

/** The CLI's own settings (`npm run cli`); flags override them. */
const cliSchema = z.object({
  /** Profile file with the device's keys and token (default ~/.messenger/profile.json). */
  MESSENGER_PROFILE: z.string().min(1).optional(),
  /** API base URL when neither --url nor the profile names one (default https://127.0.0.1:8443). */
  MESSENGER_URL: z.url().optional(),
  /** Password for register/login without a prompt (scripts). */
  MESSENGER_PASSWORD: z.string().optional(),
  /** PEM certificate the CLI trusts besides the system CAs, like --ca (e.g. cert/certificate.pem). */
  MESSENGER_CA: z.string().min(1).optional(),
});

export type CliEnv = z.output<typeof cliSchema>;

export function loadCliEnv(env?: NodeJS.ProcessEnv): CliEnv {
  return parseEnv(cliSchema, env);
}
