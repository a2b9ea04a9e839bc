import { createInterface } from 'node:readline';

/** Reads a password: hidden when typed at a terminal, the first line when piped (`echo pw | …`). */
export function askPassword(prompt: string): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY) {
    const rl = createInterface({ input });
    return new Promise((resolve, reject) => {
      let answered = false;
      rl.once('line', (line) => {
        // Resolve before close(): close() emits 'close' synchronously, which would reject first.
        answered = true;
        resolve(line);
        rl.close();
      });
      rl.once('close', () => {
        if (!answered) reject(new Error('no password given (--password, MESSENGER_PASSWORD or stdin)'));
      });
    });
  }
  process.stderr.write(prompt);
  input.setRawMode(true);
  input.resume();
  return new Promise((resolve, reject) => {
    let typed = '';
    const done = (err?: Error) => {
      input.setRawMode(false);
      input.pause();
      input.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(typed);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new Error('cancelled'));
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else typed += ch;
      }
    };
    input.on('data', onData);
  });
}
