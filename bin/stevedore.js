#!/usr/bin/env node
// The `stevedore` command. The TypeScript sources are compiled to dist/ by `make build`.
// Plain JavaScript that any Node can parse: the version check must run before dist/ is loaded, since
// dist/ imports what only newer Node has (node:zlib's zstd) and would fail with a confusing message.
import { readFileSync } from 'node:fs';
import module from 'node:module';

// The lowest major version, from package.json's "engines.node" (">=24"): the one place it is stated.
const engines = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).engines?.node ?? '';
const needed = Number(/(\d+)/.exec(engines)?.[1] ?? 0);
const major = Number(process.versions.node.split('.')[0]);
if (major < needed) {
  console.error(`stevedore: needs Node.js >= ${needed}, this is ${process.versions.node} (${process.execPath})`);
  process.exit(125);
}

// V8's on-disk compile cache (Node >= 22.1) shortens start-up, which is most of the time of a short
// command (a copy that finds every blob present, a run of `true`).
module.enableCompileCache?.();

import('../dist/cli/main.js')
  .then((m) => m.main(process.argv))
  .catch((err) => {
    console.error(`stevedore: ${err?.message ?? err}`);
    process.exit(125);
  });
