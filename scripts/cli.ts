import { ApiError } from '../common/client/index.ts';
import * as account from './cli/commands/account.ts';
import { group } from './cli/commands/groups.ts';
import * as messages from './cli/commands/messages.ts';
import { sink } from './cli/commands/sink.ts';
import { Cli, UsageError } from './cli/context.ts';

// `messenger-cli` (`npm run cli --`): runs as one bundled file, dist/messenger-cli.cjs (npm run build).
const USAGE = `usage: messenger-cli <command> [options]      (in the repository: npm run cli -- <command>)

  register <username>            create an account and log this device in (--force replaces a
                                 profile that holds another user's keys)
  login <username>               log in (resumes the saved device of that user)
  whoami                         the saved identity
  send <username> <text>         send an end-to-end encrypted message
  send --group <id|name> <text>  … to a group   (--file <path> attaches a file, repeatable)
  inbox                          pull, decrypt, print and acknowledge waiting events (--no-ack, --limit n)
  listen                         stream events live (WebSocket), decrypted; Ctrl-C stops
  files get <message> [--out d]  download and decrypt the attachments of a received message
  sink [--port p]                receive signed pushes locally, verify and print them
                                 (--set-address points this device's pushes at the sink and clears
                                  it on exit; --public-url when the server reaches it under another URL;
                                  --count n stops after n pushes)
  address set <url> | clear      where this device's pushes go (clear: events wait for pull)
  devices                        list your devices
  presence <user…>               which of them (contacts only) have a live stream open
  presence --watch <user…>       print each contact's presence, then every change, until Ctrl-C
  group create <name> [user…]    create a group;  group list | group show <id|name> | group add <id|name> <user>
  logout                         end the session (the profile keeps the device for the next login)

options: --url <base> (default https://127.0.0.1:8443, or MESSENGER_URL), --profile <file> (default
  ~/.messenger/profile.json, or MESSENGER_PROFILE), --password <pw> (or MESSENGER_PASSWORD, else the
  first line of stdin, else a prompt), --ca <pem> (trust this certificate; or MESSENGER_CA), --insecure
  (accept any certificate), --json (machine-readable output), --device-name <name>`;

const commands: Record<string, (cli: Cli) => Promise<void>> = {
  ...account,
  ...messages,
  group,
  sink,
};

async function main(): Promise<number> {
  const cli = new Cli(process.argv.slice(2));
  const name = cli.positionals[0];
  if (cli.opt.help || !name) {
    process.stdout.write(`${USAGE}\n`);
    return name || cli.opt.help ? 0 : 2;
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!command) throw new UsageError(`unknown command: ${name}`);
  await command(cli);
  return 0;
}

/**
 * The server's `details` (`[{field, problem}]` for a rejected input) as `password: at least 8
 * characters; …`: the field without its `body.`/`query.` prefix, which names no option of ours.
 */
function detailsOf(err: ApiError): string {
  if (!Array.isArray(err.details)) return '';
  const parts = err.details.map((d: { field?: unknown; problem?: unknown; message?: unknown }) => {
    const field = typeof d.field === 'string' ? d.field.replace(/^(body|query|params)\./, '') : '';
    const problem = d.problem ?? d.message;
    return [field, typeof problem === 'string' ? problem : ''].filter(Boolean).join(': ');
  });
  return parts.filter(Boolean).join('; ');
}

function explain(err: unknown): { message: string; code: number } {
  if (err instanceof UsageError) return { message: `${err.message} (see --help)`, code: 2 };
  if (err instanceof ApiError) {
    const details = detailsOf(err);
    return { message: `${details || err.message} (${err.status} ${err.error})`, code: 1 };
  }
  const e = err as Error & { code?: string; cause?: { code?: string; message?: string } };
  const code = e.cause?.code ?? e.code ?? '';
  if (code.startsWith('ERR_PARSE_ARGS'))
    return { message: `${e.message.split('.')[0]} (see --help)`, code: 2 };
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) {
    return {
      message: `the server certificate is not trusted (${code}): pass --ca <pem> or --insecure`,
      code: 1,
    };
  }
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND') {
    return { message: `cannot reach the server (${code}): is the stack running? see --url`, code: 1 };
  }
  return { message: e.message || String(err), code: 1 };
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    const { message, code } = explain(err);
    process.stderr.write(`error: ${message}\n`);
    process.exit(code);
  },
);
