// Lets Node 24 run the project's TypeScript directly (type stripping) from hack/ scripts:
//   node --import ./hack/lib/ts-resolve.ts hack/some-script.ts
// The sources use `.js` import specifiers (for tsc), so relative `.js` imports are mapped to `.ts`.
import { registerHooks } from 'node:module';

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
