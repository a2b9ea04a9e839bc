import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadStackConfig } from './stack/config.ts';
import { stopAll } from './stack/processes.ts';
import { type ServicesState, stopServices } from './stack/services.ts';

// `npm run stack:stop`: stops exactly what `npm run stack` started, found by its PID files.
const config = loadStackConfig();
const runDir = resolve(config.STACK_RUN_DIR);
const log = (m: string) => console.log(`[stack] ${m}`);

const stopped = await stopAll(runDir, log);
const servicesFile = join(runDir, 'services.json');
if (existsSync(servicesFile)) {
  const state = JSON.parse(await readFile(servicesFile, 'utf8')) as ServicesState;
  await stopServices(state, log);
  await rm(servicesFile, { force: true });
}
await rm(join(runDir, 'stack.json'), { force: true });
log(stopped ? `stopped ${stopped} process(es)` : 'nothing was running');
