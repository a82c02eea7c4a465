#!/usr/bin/env node
// The `stevedore` command. The TypeScript sources are compiled to dist/ by `make build`.
import('../dist/cli/main.js').then((m) => m.main(process.argv)).catch((err) => {
  console.error(`stevedore: ${err?.message ?? err}`);
  process.exit(125);
});
