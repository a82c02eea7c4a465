import { describe, expect, it } from 'vitest';
import { ContainerfileError, parseContainerfile, type Instruction, type InstructionOf, type InstructionKind } from '../../src/build/containerfile/index.js';

function parse(text: string) {
  return parseContainerfile(text, { file: 'Containerfile' });
}

/** The first instruction of a kind in a file that starts with `FROM scratch`. */
function one<K extends InstructionKind>(kind: K, body: string): InstructionOf<K> {
  const cf = parse(`FROM scratch\n${body}\n`);
  const found = cf.instructions.find((i): i is InstructionOf<K> => i.kind === kind && i.line > 1);
  if (!found) throw new Error(`no ${kind} in ${body}`);
  return found;
}

function errorOf(text: string): ContainerfileError {
  try {
    parseContainerfile(text, { file: 'Containerfile' });
  } catch (err) {
    if (err instanceof ContainerfileError) return err;
    throw err;
  }
  throw new Error('expected a ContainerfileError');
}

describe('parser directives (reference: "Parser directives")', () => {
  it('reads syntax, escape and check at the top, case-insensitively and with blanks', () => {
    const cf = parse('# syntax=docker/dockerfile:1\n#  ESCAPE = `\n#check=skip=JSONArgsRecommended,StageNameCasing;error=true\nFROM scratch\n');
    expect(cf.directives.syntax).toBe('docker/dockerfile:1');
    expect(cf.directives.escape).toBe('`');
    expect(cf.directives.check).toEqual({ skip: ['JSONArgsRecommended', 'StageNameCasing'], error: true, experimental: [] });
    expect(cf.directives.all.map((d) => d.line)).toEqual([1, 2, 3]);
  });

  it.each([
    ['after an instruction', 'FROM scratch\n# escape=`\n'],
    ['after a blank line', '\n# escape=`\nFROM scratch\n'],
    ['after an ordinary comment', '# hello\n# escape=`\nFROM scratch\n'],
    ['after an unknown directive (itself a comment)', '# unknowndirective=value\n# escape=`\nFROM scratch\n'],
  ])('a directive %s is only a comment', (_what, text) => {
    expect(parse(text).directives.escape).toBe('\\');
  });

  it('leading blanks before # are allowed, and a UTF-8 BOM is ignored', () => {
    expect(parse('\uFEFF  # escape=`\nFROM scratch\n').directives.escape).toBe('`');
  });

  it('skip=all in check', () => {
    expect(parse('# check=skip=all\nFROM scratch\n').directives.check?.skip).toBe('all');
  });

  it.each([
    ['# escape=\\\n# escape=`\nFROM scratch\n', 'Containerfile:2: only one escape parser directive can be used'],
    ['# escape=x\nFROM scratch\n', "Containerfile:1: invalid escape token 'x' does not match ` or \\"],
    ['# check=bogus=1\nFROM scratch\n', 'Containerfile:1: check directive: unknown option "bogus"'],
  ])('rejects bad directives: %j', (text, message) => {
    expect(errorOf(text).message).toBe(message);
  });
});

describe('line continuations and comments', () => {
  it('joins continued lines without adding blanks, keeping what precedes the escape', () => {
    const run = one('RUN', 'RUN echo a \\\n  b \\\n c');
    expect(run.command).toEqual({ form: 'shell', command: 'echo a   b  c' });
    expect(run.line).toBe(2);
    expect(run.endLine).toBe(4);
  });

  it('blanks after the escape character still continue the line', () => {
    expect(one('RUN', 'RUN echo a \\   \n b').command).toEqual({ form: 'shell', command: 'echo a  b' });
  });

  it('comment lines and empty lines inside a continuation are skipped (BuildKit)', () => {
    const run = one('RUN', 'RUN apt-get install \\\n# a comment\n    # indented comment\n\n   curl');
    expect(run.command).toEqual({ form: 'shell', command: 'apt-get install    curl' });
    expect(run.endLine).toBe(6);
  });

  it('a comment never continues, even ending in the escape character', () => {
    const cf = parse('FROM scratch\n# comment \\\nRUN true\n');
    expect(cf.instructions.map((i) => i.kind)).toEqual(['FROM', 'RUN']);
  });

  it('# in the middle of a line is not a comment', () => {
    expect(one('RUN', 'RUN echo "#x" # y').command).toEqual({ form: 'shell', command: 'echo "#x" # y' });
  });

  it('with # escape=` the backtick continues lines and \\ is an ordinary character', () => {
    const cf = parse('# escape=`\nFROM scratch\nCOPY testfile.txt c:\\\nRUN dir c:\\ `\n  /w\n');
    const copy = cf.instructions[1] as InstructionOf<'COPY'>;
    expect(copy.dest).toBe('c:\\');
    expect((cf.instructions[2] as InstructionOf<'RUN'>).command).toEqual({ form: 'shell', command: 'dir c:\\   /w' });
  });

  it('without the escape directive, c:\\ at the end of a line continues it (the reference example)', () => {
    const cf = parse('FROM scratch\nCOPY testfile.txt c:\\\nRUN dir c:\\\n');
    // The reference: "treated as COPY testfile.txt c:RUN dir c:" — two instructions, not three.
    expect(cf.instructions).toHaveLength(2);
    expect(cf.instructions[1]).toMatchObject({
      sources: [
        { kind: 'path', path: 'testfile.txt' },
        { kind: 'path', path: 'c:RUN' },
        { kind: 'path', path: 'dir' },
      ],
      dest: 'c:',
    });
  });

  it('instructions are case-insensitive and CRLF files parse', () => {
    const cf = parse('from scratch\r\nrun echo hi\r\n');
    expect(cf.instructions.map((i) => i.kind)).toEqual(['FROM', 'RUN']);
    expect((cf.instructions[1] as InstructionOf<'RUN'>).command).toEqual({ form: 'shell', command: 'echo hi' });
  });

  it('keeps the original logical line', () => {
    expect(one('RUN', '  RUN  --network=none  echo \\\n hi').original).toBe('RUN  --network=none  echo  hi');
  });
});

describe('exec (JSON) form vs shell form (reference: "Shell and exec form")', () => {
  it.each<[string, Instruction['kind'], unknown]>([
    ['RUN ["echo", "hi"]', 'RUN', { form: 'exec', args: ['echo', 'hi'] }],
    ['RUN echo hi', 'RUN', { form: 'shell', command: 'echo hi' }],
    ["RUN ['echo', 'hi']", 'RUN', { form: 'shell', command: "RUN ['echo', 'hi']".slice(4) }],
    ['RUN [ -f /x ] && echo y', 'RUN', { form: 'shell', command: '[ -f /x ] && echo y' }],
    ['CMD ["a","b" ', 'CMD', { form: 'shell', command: '["a","b"' }],
    ['CMD []', 'CMD', { form: 'exec', args: [] }],
    ['CMD', 'CMD', { form: 'exec', args: [] }],
    ['ENTRYPOINT ["/bin/app", "--flag"]', 'ENTRYPOINT', { form: 'exec', args: ['/bin/app', '--flag'] }],
    ['ENTRYPOINT exec app', 'ENTRYPOINT', { form: 'shell', command: 'exec app' }],
    ['CMD ["c:\\\\dir"]', 'CMD', { form: 'exec', args: ['c:\\dir'] }],
  ])('%s', (line, kind, command) => {
    expect((one(kind, line) as { command: unknown }).command).toEqual(command);
  });

  it('a JSON array holding a non-string is an error, not shell form', () => {
    expect(errorOf('FROM scratch\nCMD ["a", 1]\n').message).toBe(
      'Containerfile:2: CMD: when using JSON array syntax, arrays must be comprised of strings only',
    );
  });

  it('SHELL requires JSON', () => {
    expect(one('SHELL', 'SHELL ["powershell", "-command"]').shell).toEqual(['powershell', '-command']);
    expect(errorOf('FROM scratch\nSHELL /bin/bash -c\n').message).toBe('Containerfile:2: SHELL: SHELL requires the arguments to be in JSON form');
  });

  it('VOLUME takes JSON or a blank-separated list', () => {
    expect(one('VOLUME', 'VOLUME ["/a", "/b c"]').paths).toEqual(['/a', '/b c']);
    expect(one('VOLUME', 'VOLUME /a /b').paths).toEqual(['/a', '/b']);
  });

  it('COPY takes JSON for paths with blanks', () => {
    expect(one('COPY', 'COPY ["a b", "/dst dir/"]')).toMatchObject({ sources: [{ kind: 'path', path: 'a b' }], dest: '/dst dir/' });
  });
});

describe('FROM', () => {
  it.each([
    ['FROM alpine', { image: 'alpine' }],
    ['FROM alpine:3 AS Build', { image: 'alpine:3', stageName: 'build' }],
    ['FROM alpine as b-1.x_y', { image: 'alpine', stageName: 'b-1.x_y' }],
    ['FROM --platform=$BUILDPLATFORM golang AS build', { image: 'golang', platform: '$BUILDPLATFORM', stageName: 'build' }],
    ['FROM ${IMG:-busybox}', { image: '${IMG:-busybox}' }],
  ])('%s', (line, want) => {
    expect(parse(`${line}\n`).instructions[0]).toMatchObject({ kind: 'FROM', ...want });
  });

  it.each([
    ['FROM a b', 'Containerfile:1: FROM: FROM requires either one or three arguments (FROM image [AS name])'],
    ['FROM a AS 1st', 'Containerfile:1: FROM: invalid name for build stage: "1st", name can\'t start with a number or contain symbols'],
    ['FROM --plat=x a', 'Containerfile:1: FROM: unknown flag: --plat (did you mean --platform?)'],
  ])('%s fails', (line, message) => {
    expect(errorOf(`${line}\n`).message).toBe(message);
  });
});

describe('RUN flags', () => {
  it('--mount=type=cache with id, sharing, from, source, readonly, mode, uid, gid', () => {
    const run = one(
      'RUN',
      'RUN --mount=type=cache,target=/root/.cache,id=pip,sharing=locked,from=base,source=/c,readonly,mode=0700,uid=1000,gid=1000 pip install x',
    );
    expect(run.mounts).toEqual([
      {
        type: 'cache',
        target: '/root/.cache',
        id: 'pip',
        sharing: 'locked',
        from: 'base',
        source: '/c',
        readonly: true,
        mode: '0700',
        uid: '1000',
        gid: '1000',
      },
    ]);
  });

  it('cache mount defaults: id is the target, sharing shared, writable', () => {
    expect(one('RUN', 'RUN --mount=type=cache,target=/var/cache/apt true').mounts[0]).toEqual({
      type: 'cache',
      target: '/var/cache/apt',
      id: '/var/cache/apt',
      sharing: 'shared',
      readonly: false,
    });
  });

  it('bind mounts are the default type and read-only unless rw', () => {
    const run = one('RUN', 'RUN --mount=target=/src,source=.,from=ctx --mount=type=bind,dst=/w,rw true');
    expect(run.mounts).toEqual([
      { type: 'bind', target: '/src', source: '.', from: 'ctx', readonly: true },
      { type: 'bind', target: '/w', readonly: false },
    ]);
  });

  it('secret mounts: id, target, required, env; default target /run/secrets/<id>; id from target', () => {
    const run = one('RUN', 'RUN --mount=type=secret,id=aws --mount=type=secret,id=tok,env=TOKEN,required=true --mount=type=secret,target=/etc/key.pem true');
    expect(run.mounts).toEqual([
      { type: 'secret', id: 'aws', required: false, target: '/run/secrets/aws' },
      { type: 'secret', id: 'tok', required: true, env: 'TOKEN' },
      { type: 'secret', id: 'key.pem', required: false, target: '/etc/key.pem' },
    ]);
  });

  it('several files are joined in order, each instruction naming its file (-f A -f B, as buildah)', () => {
    const cf = parseContainerfile('FROM scratch\nCOPY a /a\n', { file: 'A', more: [{ text: '\nRUN true\n', file: 'B' }] });
    expect(cf.instructions.map((i) => [i.kind, i.file, i.line])).toEqual([
      ['FROM', 'A', 1],
      ['COPY', 'A', 2],
      ['RUN', 'B', 2],
    ]);
    expect(() => parseContainerfile('FROM scratch\n', { file: 'A', more: [{ text: 'COPPY x y\n', file: 'B' }] })).toThrow('B:1: unknown instruction "COPPY"');
  });

  it('z and Z (SELinux relabelling, as buildah and podman Containerfiles carry) are accepted on bind and cache mounts and change nothing', () => {
    const run = one('RUN', 'RUN --mount=type=bind,source=.,target=/src,z --mount=type=cache,target=/c,Z --mount=target=/w,Z,rw true');
    expect(run.mounts).toEqual([
      { type: 'bind', target: '/src', source: '.', readonly: true },
      { type: 'cache', target: '/c', id: '/c', sharing: 'shared', readonly: false },
      { type: 'bind', target: '/w', readonly: false },
    ]);
  });

  it('tmpfs and ssh mounts', () => {
    const run = one('RUN', 'RUN --mount=type=tmpfs,target=/tmp,size=64m --mount=type=ssh git clone x');
    expect(run.mounts).toEqual([
      { type: 'tmpfs', target: '/tmp', size: '64m' },
      { type: 'ssh', id: 'default', required: false },
    ]);
  });

  it('a CSV-quoted field may hold a comma (flag quotes are stripped first, so wrap it in single quotes)', () => {
    expect(one('RUN', `RUN --mount='type=bind,"target=/a,b"' true`).mounts[0]).toMatchObject({ target: '/a,b' });
  });

  it('--network and --security', () => {
    expect(one('RUN', 'RUN --network=none --security=insecure make')).toMatchObject({ network: 'none', security: 'insecure' });
  });

  it('a lone -- ends the flags', () => {
    expect(one('RUN', 'RUN -- --help').command).toEqual({ form: 'shell', command: '--help' });
  });

  it.each([
    ['RUN --mount=type=cache true', 'RUN: --mount=type=cache: mount type cache requires a target'],
    ['RUN --mount=type=nfs,target=/x true', 'RUN: --mount=type=nfs,target=/x: unsupported mount type "nfs"'],
    ['RUN --mount=type=cache,target=/x,sharing=wide true', 'unsupported sharing value "wide"'],
    ['RUN --mount=type=cache,target=/x,mode=rwx true', 'mount mode must be octal, got "rwx"'],
    ['RUN --mount=type=tmpfs,target=/x,from=a true', 'unexpected key "from" for mount type tmpfs'],
    ['RUN --mount=Z,type=tmpfs,target=/x true', 'unexpected key "Z" for mount type tmpfs'],
    ['RUN --mount=type=bind,target=/x,z=1 true', 'invalid field "z=1": z takes no value'],
    ['RUN --mount=type=secret,id=a,env true', 'invalid field "env" must be a key=value pair'],
    ['RUN --network=bridge true', 'RUN: --network must be default, none or host, got "bridge"'],
    ['RUN --netwrk=none true', 'RUN: unknown flag: --netwrk (did you mean --network?)'],
    ['RUN --network true', 'RUN: missing a value on flag: --network'],
    ['RUN --network=none --network=host true', 'RUN: duplicate flag specified: --network'],
    ['RUN', 'RUN: RUN requires at least one argument'],
  ])('%s fails', (line, message) => {
    const err = errorOf(`FROM scratch\n${line}\n`);
    expect(err.line).toBe(2);
    expect(err.message).toContain(message);
    expect(err.message.startsWith('Containerfile:2: RUN: ')).toBe(true);
  });
});

describe('COPY and ADD flags', () => {
  it('COPY --from --chown --chmod --link --parents --exclude (repeatable)', () => {
    const copy = one('COPY', 'COPY --from=build --chown=app:app --chmod=0755 --link --parents --exclude=*.md --exclude=.git src/ lib/ /app/');
    expect(copy).toMatchObject({
      from: 'build',
      chown: 'app:app',
      chmod: '0755',
      link: true,
      parents: true,
      exclude: ['*.md', '.git'],
      sources: [
        { kind: 'path', path: 'src/' },
        { kind: 'path', path: 'lib/' },
      ],
      dest: '/app/',
    });
  });

  it('boolean flags take =true/=false', () => {
    expect(one('COPY', 'COPY --link=false a /b').link).toBe(false);
    expect(errorOf('FROM scratch\nCOPY --link=maybe a /b\n').message).toBe('Containerfile:2: COPY: expecting boolean value for flag --link, not: maybe');
  });

  it('quoted flag values keep their blanks', () => {
    expect(one('COPY', 'COPY --chown="a b" x /y').chown).toBe('a b');
  });

  it('ADD --checksum --keep-git-dir --unpack', () => {
    const sum = `sha256:${'a'.repeat(64)}`;
    expect(one('ADD', `ADD --checksum=${sum} --keep-git-dir=true --unpack=false https://x/y.tgz /y`)).toMatchObject({
      checksum: sum,
      keepGitDir: true,
      unpack: false,
      sources: [{ kind: 'path', path: 'https://x/y.tgz' }],
    });
  });

  it.each([
    ['COPY --chmod=abc a /b', 'Containerfile:2: COPY: --chmod requires an octal mode, got "abc"'],
    ['COPY --chmod=999 a /b', 'Containerfile:2: COPY: --chmod requires an octal mode, got "999"'],
    ['ADD --checksum=md5:x a /b', 'Containerfile:2: ADD: --checksum requires a digest such as sha256:<64 hex digits>, got "md5:x"'],
    ['COPY onlyone', 'Containerfile:2: COPY: COPY requires at least two arguments, but only one was provided. Destination could not be determined'],
    ['COPY --from=x --keep-git-dir a /b', 'Containerfile:2: COPY: unknown flag: --keep-git-dir'],
    ['ADD --from=x a /b', 'Containerfile:2: ADD: unknown flag: --from'],
  ])('%s fails', (line, message) => {
    expect(errorOf(`FROM scratch\n${line}\n`).message).toBe(message);
  });

  it('--chmod with a variable is checked after expansion, not at parse time', () => {
    expect(one('COPY', 'COPY --chmod=$MODE a /b').chmod).toBe('$MODE');
  });
});

describe('ENV, LABEL, ARG word splitting', () => {
  it.each([
    [
      'ENV A=1 B="two words" C=three\\ words',
      [
        ['A', '1'],
        ['B', '"two words"'],
        ['C', 'three\\ words'],
      ],
      false,
    ],
    ['ENV A 1 2  "3"', [['A', '1 2  "3"']], true],
    ["ENV A='single $x'", [['A', "'single $x'"]], false],
    ['ENV A=', [['A', '']], false],
  ])('%s', (line, pairs, legacy) => {
    const env = one('ENV', line);
    expect(env.pairs.map((p) => [p.key, p.value])).toEqual(pairs);
    expect(env.legacy).toBe(legacy);
  });

  it('LABEL pairs, several per line, quoted keys', () => {
    const label = one('LABEL', 'LABEL "com.example.vendor"="ACME" version=1.0 description="a \\"b\\""');
    expect(label.pairs).toEqual([
      { key: '"com.example.vendor"', value: '"ACME"' },
      { key: 'version', value: '1.0' },
      { key: 'description', value: '"a \\"b\\""' },
    ]);
  });

  it('ARG with and without defaults, several per line', () => {
    expect(one('ARG', 'ARG A B=2 C="x y"').args).toEqual([{ name: 'A' }, { name: 'B', default: '2' }, { name: 'C', default: '"x y"' }]);
  });

  it.each([
    ['ENV', 'Containerfile:2: ENV: ENV requires at least one argument'],
    ['ENV onlykey', 'Containerfile:2: ENV: ENV must have two arguments'],
    ['ENV A=1 B', 'Containerfile:2: ENV: Syntax error - can\'t find = in "B". Must be of the form: name=value'],
    ['ENV =1', 'Containerfile:2: ENV: ENV names can not be blank'],
    ['LABEL', 'Containerfile:2: LABEL: LABEL requires at least one argument'],
    ['ARG', 'Containerfile:2: ARG: ARG requires at least one argument'],
    ['ARG =x', 'Containerfile:2: ARG: ARG names can not be blank'],
  ])('%s fails', (line, message) => {
    expect(errorOf(`FROM scratch\n${line}\n`).message).toBe(message);
  });
});

describe('other instructions', () => {
  it('EXPOSE USER WORKDIR STOPSIGNAL MAINTAINER keep their text for later expansion', () => {
    const cf = parse('FROM scratch\nEXPOSE 80/tcp 53/udp $P\nUSER app:app\nWORKDIR /a b\nSTOPSIGNAL SIGTERM\nMAINTAINER Jane Doe <j@x>\n');
    expect(cf.instructions.slice(1)).toMatchObject([
      { kind: 'EXPOSE', ports: ['80/tcp', '53/udp', '$P'] },
      { kind: 'USER', user: 'app:app' },
      { kind: 'WORKDIR', path: '/a b' },
      { kind: 'STOPSIGNAL', signal: 'SIGTERM' },
      { kind: 'MAINTAINER', maintainer: 'Jane Doe <j@x>' },
    ]);
  });

  it('HEALTHCHECK CMD with every flag; shell form; NONE', () => {
    const hc = one(
      'HEALTHCHECK',
      'HEALTHCHECK --interval=30s --timeout=1m30s --start-period=500ms --start-interval=2s --retries=3 CMD ["curl", "-f", "http://localhost/"]',
    );
    expect(hc).toMatchObject({
      test: { type: 'CMD', command: { form: 'exec', args: ['curl', '-f', 'http://localhost/'] } },
      intervalNs: 30e9,
      timeoutNs: 90e9,
      startPeriodNs: 500e6,
      startIntervalNs: 2e9,
      retries: 3,
    });
    expect(one('HEALTHCHECK', 'HEALTHCHECK cmd curl -f localhost || exit 1').test).toEqual({
      type: 'CMD',
      command: { form: 'shell', command: 'curl -f localhost || exit 1' },
    });
    expect(one('HEALTHCHECK', 'HEALTHCHECK NONE').test).toEqual({ type: 'NONE' });
  });

  it.each([
    ['HEALTHCHECK NONE x', 'HEALTHCHECK NONE takes no arguments'],
    ['HEALTHCHECK CMD', 'Missing command after HEALTHCHECK CMD'],
    ['HEALTHCHECK RUN x', 'Unknown type "RUN" in HEALTHCHECK (try CMD)'],
    ['HEALTHCHECK --interval=5 CMD x', '--interval: invalid duration "5" (use Go syntax such as 30s, 1m30s, 500ms)'],
    ['HEALTHCHECK --timeout=-1s CMD x', '--timeout cannot be negative (-1s)'],
    ['HEALTHCHECK --interval=10us CMD x', '--interval cannot be less than 1ms (10us)'],
    ['HEALTHCHECK --retries=-1 CMD x', '--retries cannot be negative (-1)'],
    ['HEALTHCHECK --retries=x CMD x', '--retries must be an integer, got "x"'],
  ])('%s fails', (line, message) => {
    expect(errorOf(`FROM scratch\n${line}\n`).message).toBe(`Containerfile:2: HEALTHCHECK: ${message}`);
  });

  it('ONBUILD stores the trigger text and the parsed trigger', () => {
    const ob = one('ONBUILD', 'ONBUILD COPY --chown=1 . /app/src');
    expect(ob.expression).toBe('COPY --chown=1 . /app/src');
    expect(ob.trigger).toMatchObject({ kind: 'COPY', chown: '1', dest: '/app/src' });
  });

  it.each([
    ['ONBUILD ONBUILD RUN x', "Containerfile:2: ONBUILD: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"],
    ['ONBUILD FROM x', "Containerfile:2: ONBUILD: FROM isn't allowed as an ONBUILD trigger"],
    ['ONBUILD MAINTAINER x', "Containerfile:2: ONBUILD: MAINTAINER isn't allowed as an ONBUILD trigger"],
    ['ONBUILD RUNN x', 'Containerfile:2: unknown instruction "RUNN" (did you mean RUN?)'],
    ['ONBUILD COPY --chmod=z a b', 'Containerfile:2: COPY: --chmod requires an octal mode, got "z"'],
  ])('%s fails', (line, message) => {
    expect(errorOf(`FROM scratch\n${line}\n`).message).toBe(message);
  });
});

describe('file-level errors name file and line', () => {
  it.each([
    ['FROM scratch\n\nRUNN echo\n', 'Containerfile:3: unknown instruction "RUNN" (did you mean RUN?)', 3],
    ['FROM scratch\nCOPPY a b\n', 'Containerfile:2: unknown instruction "COPPY" (did you mean COPY?)', 2],
    ['FROM scratch\nFOOBAR x\n', 'Containerfile:2: unknown instruction "FOOBAR"', 2],
    ['FROM scratch\nworkdri /x\n', 'Containerfile:2: unknown instruction "workdri" (did you mean WORKDIR?)', 2],
    ['RUN echo\nFROM scratch\n', 'Containerfile:1: RUN: no build stage in current context: only ARG may come before the first FROM', 1],
    ['', 'Containerfile: file with no instructions', undefined],
    ['# just a comment\n\n', 'Containerfile: file with no instructions', undefined],
    ['ARG A=1\n', 'Containerfile: no FROM instruction: a Containerfile needs at least one build stage', undefined],
  ])('%j', (text, message, line) => {
    const err = errorOf(text);
    expect(err.message).toBe(message);
    expect(err.code).toBe('CONTAINERFILE_ERROR');
    expect(err.file).toBe('Containerfile');
    expect(err.line).toBe(line);
  });

  it('uses the file name it is given', () => {
    expect(() => parseContainerfile('FROM a\nBAD x\n', { file: 'build/Dockerfile.dev' })).toThrow('build/Dockerfile.dev:2: unknown instruction "BAD"');
  });

  it('the instruction field is set for instruction errors', () => {
    const err = errorOf('FROM scratch\nCOPY --chmod=abc a /b\n');
    expect(err).toMatchObject({ file: 'Containerfile', line: 2, instruction: 'COPY', detail: '--chmod requires an octal mode, got "abc"' });
  });
});
