// Preloaded into listeners and senders by `npm run bench -- --cpu-prof DIR` (NODE_OPTIONS does not
// allow --cpu-prof itself): profiles the whole process and writes DIR/<role>-<pid>.cpuprofile at
// exit, for Chrome DevTools or speedscope. DIR comes from this module's URL (`?dir=`).
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { basename, join } from 'node:path';

const dir = new URL(import.meta.url).searchParams.get('dir') ?? '.';
const role = basename(process.argv[1] ?? 'node').replace(/\.\w+$/, '');
const session = new Session();
session.connect();
session.post('Profiler.enable');
session.post('Profiler.setSamplingInterval', { interval: 500 });
session.post('Profiler.start');
process.once('exit', () => {
  // Same-thread inspector sessions answer synchronously, so this completes before exit.
  session.post('Profiler.stop', (err, res) => {
    if (!err)
      writeFileSync(
        join(dir, `${process.argv[1]?.includes('sender') ? 'sender' : role}-${process.pid}.cpuprofile`),
        JSON.stringify(res.profile),
      );
  });
});
