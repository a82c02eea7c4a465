import { createRequire } from 'node:module';

/**
 * tar-stream, loaded on first use: the CLI's `copy` and `sync` import the archive transports but
 * rarely read or write an archive (test/copy/module-graph keeps that start-up cost out). Only
 * util/tar/read.ts and util/tar/write.ts use it.
 */
let lib: typeof import('tar-stream') | undefined;
export const tarStream = (): typeof import('tar-stream') => (lib ??= createRequire(import.meta.url)('tar-stream') as typeof import('tar-stream'));
