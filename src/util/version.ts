import { readFileSync } from 'node:fs';

/**
 * Stevedore's version, read from package.json: the one place it is written. This file sits two
 * folders below the package root both as source (src/util/) and compiled (dist/util/), and the
 * image ships package.json beside dist/ (hack/image/Containerfile).
 */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
