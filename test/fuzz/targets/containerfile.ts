import fc from 'fast-check';
import { ContainerfileError, parseContainerfile, planStages } from '../../../src/build/containerfile/index.js';
import { InvalidInputError } from '../../../src/util/errors.js';
import { assertContract, bytes, ContractViolation, refusesWithSync, text, type FuzzTarget } from '../lib/target.js';

const KEYWORDS = [
  'FROM',
  'RUN',
  'CMD',
  'LABEL',
  'EXPOSE',
  'ENV',
  'ADD',
  'COPY',
  'ENTRYPOINT',
  'VOLUME',
  'USER',
  'WORKDIR',
  'ARG',
  'ONBUILD',
  'STOPSIGNAL',
  'HEALTHCHECK',
  'SHELL',
  'MAINTAINER',
];

export const containerfileTarget: FuzzTarget = {
  name: 'containerfile',
  contract:
    'any bytes → a parsed and planned Containerfile or a ContainerfileError whose message starts with "Containerfile:<line>:" (line within the file); never another exception; ≤ 250 ms + 20 ms/KiB',
  sources: ['src/build/containerfile/'],
  dictionary: [
    ...KEYWORDS.map((k) => `\n${k} `),
    ' AS ',
    '\\\n',
    '# escape=`\n',
    '# syntax=docker/dockerfile:1\n',
    '# check=skip=all;error=true\n',
    '<<EOF\n',
    '<<-"EOF"\n',
    '\nEOF\n',
    '${A}',
    '${A:-x}',
    '${A:+y}',
    '${A:?msg}',
    '${A#*}',
    '${A%%/*}',
    '${',
    '$$',
    '["sh", "-c", "x"]',
    '["',
    '--from=',
    '--mount=type=cache,target=/c',
    '--mount=type=secret,id=s',
    '--mount=type=bind,from=stage,source=/a',
    '--chown=1:1',
    '--chmod=0755',
    '--platform=$BUILDPLATFORM',
    '--network=none',
    '--interval=1s --timeout=0s --retries=-1',
    '--link',
    '--exclude=*.md',
    'CMD ',
    'NONE',
    '=',
    '"',
    "'",
    '\\',
    '\r\n',
    '\t',
    'scratch',
    'busybox@sha256:',
    '0',
  ],
  generate: fc
    .array(
      fc.tuple(
        fc.constantFrom(...KEYWORDS, 'FROM', 'FROM', 'RUN', 'COPY', 'ARG'),
        fc.array(fc.constantFrom('a', 'b=c', '${A:-1}', '--from=0', '"x y"', '["a","b"]', '<<EOF', 'AS s', '\\', '$X', '/', '.', '*'), { maxLength: 5 }),
      ),
      { minLength: 1, maxLength: 12 },
    )
    .map((lines) => bytes(lines.map(([k, args]) => `${k} ${args.join(' ')}`).join('\n'))),
  run(input) {
    const src = text(input);
    const lineCount = src.split('\n').length;
    refusesWithSync(
      [ContainerfileError],
      () => {
        const cf = parseContainerfile(src, { file: 'Containerfile' });
        refusesWithSync([InvalidInputError], () =>
          planStages(cf, { platform: { os: 'linux', architecture: 'amd64' }, buildPlatform: { os: 'linux', architecture: 'amd64' } }),
        );
      },
      (err) => {
        const e = err as ContainerfileError;
        assertContract(e.file === 'Containerfile' && e.message.startsWith('Containerfile:'), `error without the file name: ${e.message}`);
        if (e.line !== undefined) {
          assertContract(Number.isInteger(e.line) && e.line >= 1 && e.line <= lineCount + 1, `error names line ${e.line} of a ${lineCount}-line file`);
          if (!e.message.startsWith(`Containerfile:${e.line}:`)) throw new ContractViolation(`message does not start with file:line: ${e.message}`);
        }
      },
    );
  },
};
