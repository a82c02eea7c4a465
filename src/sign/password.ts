import { KeyError } from './errors.js';

/**
 * The password of an encrypted private key, as cosign finds it: `COSIGN_PASSWORD` when set (an
 * empty value is a valid, empty password), else a prompt on the terminal with echo off. With no
 * terminal and no variable there is nobody to ask, which is an error rather than a hang.
 */
export async function readPassword(prompt: string, opts: { confirm?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const env = opts.env ?? process.env;
  if (env.COSIGN_PASSWORD !== undefined) return env.COSIGN_PASSWORD;
  if (!process.stdin.isTTY) {
    throw new KeyError('a password is needed for the private key: set COSIGN_PASSWORD (it may be empty) or run on a terminal');
  }
  const first = await promptHidden(prompt);
  if (opts.confirm) {
    const again = await promptHidden('Enter password for private key again: ');
    if (again !== first) throw new KeyError('the passwords do not match');
  }
  return first;
}

/** Reads one line from the terminal without echoing it. */
function promptHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    let value = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new KeyError('password prompt interrupted'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}
