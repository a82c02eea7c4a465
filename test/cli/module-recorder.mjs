// Preload (`node --import`): records the URL of every module loaded (ESM imports and CommonJS
// requires alike) and writes them, one a line, to $MODULE_LOG when the process exits.
import { writeFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const loaded = [];
registerHooks({
  load(url, context, next) {
    loaded.push(url);
    return next(url, context);
  },
});
process.on('exit', () => {
  if (process.env.MODULE_LOG) writeFileSync(process.env.MODULE_LOG, `${loaded.join('\n')}\n`);
});
