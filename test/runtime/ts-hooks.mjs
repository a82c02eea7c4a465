// Lets Node run the TypeScript sources directly (type stripping): `./x.js` imports resolve to `./x.ts`.
import { registerHooks } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
registerHooks({
  resolve(specifier, context, next) {
    if (specifier.endsWith('.js') && (specifier.startsWith('.') || specifier.startsWith('file:')) && context.parentURL?.startsWith('file:')) {
      const url = new URL(specifier, context.parentURL);
      if (!existsSync(fileURLToPath(url)) && existsSync(fileURLToPath(url).replace(/\.js$/, '.ts'))) {
        return next(url.href.replace(/\.js$/, '.ts'), context);
      }
    }
    return next(specifier, context);
  },
});
