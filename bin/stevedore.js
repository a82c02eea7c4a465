#!/usr/bin/env node
// The `stevedore` command. The TypeScript sources are compiled to dist/ by `make build`.
import module from 'node:module';

// V8's on-disk compile cache (Node >= 22.1) roughly halves start-up, which is most of the time of
// a short command (a copy that finds every blob present, a run of `true`).
module.enableCompileCache?.();

import('../dist/cli/main.js').then((m) => m.main(process.argv)).catch((err) => {
  console.error(`stevedore: ${err?.message ?? err}`);
  process.exit(125);
});
