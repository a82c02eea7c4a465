// Writes crds/ from the API types in src/k8s/api/ (`make manifests`).
// Runs on Node 24's built-in type stripping with the project's resolve hook:
//   node --import ./hack/lib/ts-resolve.ts hack/gen-crds.ts
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
