// Writes crds/ from the API types in src/k8s/api/ (`make manifests`).
// Runs on Node 24's built-in type stripping: `node hack/gen-crds.ts`. The sources use
// `.js` import specifiers (for tsc), so a resolve hook maps them to the `.ts` files.
import { registerHooks } from 'node:module';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

registerHooks({
  resolve(specifier, context, nextResolve) {
    if ((specifier.startsWith('./') || specifier.startsWith('../')) && specifier.endsWith('.js')) {
      try {
        return nextResolve(specifier.slice(0, -3) + '.ts', context);
      } catch {
        // not a TypeScript source: fall through
      }
    }
    return nextResolve(specifier, context);
  },
});

const { generateCRDs } = await import('../src/k8s/crdgen.js');

const outDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'crds');
mkdirSync(outDir, { recursive: true });
const files = generateCRDs();
for (const name of readdirSync(outDir)) {
  if (name.endsWith('.yaml') && !files.has(name)) rmSync(join(outDir, name));
}
for (const [name, text] of files) {
  writeFileSync(join(outDir, name), text);
  console.log(`wrote crds/${name}`);
}
