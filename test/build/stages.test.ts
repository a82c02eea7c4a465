import { describe, expect, it } from 'vitest';
import {
  applyOnBuild,
  ContainerfileError,
  evaluateStage,
  parseContainerfile,
  planStages,
  platformArgs,
  type BuildPlan,
  type InstructionOf,
  type PlanOptions,
} from '../../src/build/containerfile/index.js';

const amd64 = { os: 'linux', architecture: 'amd64' };
const arm64 = { os: 'linux', architecture: 'arm64' };

function plan(text: string, opts: PlanOptions = {}): BuildPlan {
  return planStages(parseContainerfile(text, { file: 'Containerfile' }), { platform: amd64, buildPlatform: amd64, ...opts });
}

/** Expands each RUN-less step of the target and returns the WORKDIR paths, a handy probe. */
function workdirs(text: string, opts: PlanOptions = {}): string[] {
  const p = plan(text, opts);
  return evaluateStage(p, p.target)
    .steps.map((s) => s.instruction)
    .filter((i): i is InstructionOf<'WORKDIR'> => i.kind === 'WORKDIR')
    .map((i) => i.path);
}

function planError(text: string, opts: PlanOptions = {}): ContainerfileError {
  try {
    plan(text, opts);
  } catch (err) {
    if (err instanceof ContainerfileError) return err;
    throw err;
  }
  throw new Error('expected a ContainerfileError');
}

describe('ARG scope (reference: "ARG" / "Scope" / "Understand how ARG and FROM interact")', () => {
  it('a global ARG is usable in FROM', () => {
    const p = plan('ARG VERSION=3.20\nFROM alpine:${VERSION}\n');
    expect(p.target.base).toEqual({ kind: 'image', ref: 'alpine:3.20' });
  });

  it('a global ARG is not visible inside a stage unless redeclared without a value', () => {
    expect(workdirs('ARG V=1\nFROM scratch\nWORKDIR /a$V\nARG V\nWORKDIR /b$V\n')).toEqual(['/a', '/b1']);
  });

  it('a build arg overrides a default, globally and in a stage', () => {
    expect(plan('ARG V=1\nFROM alpine:$V\n', { buildArgs: { V: '2' } }).target.base).toEqual({ kind: 'image', ref: 'alpine:2' });
    expect(workdirs('FROM scratch\nARG V=1\nWORKDIR /$V\n', { buildArgs: { V: '9' } })).toEqual(['/9']);
    expect(workdirs('ARG V=1\nFROM scratch\nARG V\nWORKDIR /$V\n', { buildArgs: { V: '9' } })).toEqual(['/9']);
  });

  it('a stage ARG default replaces the global value and may use earlier variables', () => {
    expect(workdirs('ARG V=1\nFROM scratch\nARG A=x\nARG V=${A}2\nWORKDIR /$V\n')).toEqual(['/x2']);
  });

  it('a variable is usable only after its ARG line', () => {
    expect(workdirs('FROM scratch\nWORKDIR /$V\nARG V=1\nWORKDIR /$V\n')).toEqual(['/', '/1']);
  });

  it('each stage has its own ARGs', () => {
    const p = plan('FROM scratch AS a\nARG V=1\nFROM scratch AS b\nWORKDIR /$V\n');
    const wd = evaluateStage(p, p.target).steps[0]!.instruction as InstructionOf<'WORKDIR'>;
    expect(wd.path).toBe('/');
  });

  it('ENV overrides an ARG of the same name (reference: "Using ARG variables")', () => {
    expect(workdirs('FROM scratch\nARG V=arg\nENV V=env\nWORKDIR /$V\n', { buildArgs: { V: 'cli' } })).toEqual(['/env']);
  });

  it('global ARG defaults may use earlier global ARGs and platform args', () => {
    const p = plan('ARG A=x\nARG B=${A}-$TARGETARCH\nFROM img:$B\n', { platform: arm64 });
    expect(p.target.base).toEqual({ kind: 'image', ref: 'img:x-arm64' });
  });

  it('build args that no ARG declares are reported as unused (proxy and platform args never are)', () => {
    const p = plan('ARG USED\nFROM scratch AS a\nARG INA\nFROM scratch\n', {
      buildArgs: { USED: '1', INA: '2', NOPE: '3', HTTP_PROXY: 'http://p', TARGETARCH: 'x' },
    });
    // Stage a is not needed by the target, so INA is unused too.
    expect(p.unusedBuildArgs).toEqual(['INA', 'NOPE']);
  });
});

describe('predefined args', () => {
  it('platform args come from the target and build platforms', () => {
    expect(Object.fromEntries(platformArgs({ os: 'linux', architecture: 'arm', variant: 'v7' }, amd64))).toEqual({
      TARGETPLATFORM: 'linux/arm/v7',
      TARGETOS: 'linux',
      TARGETARCH: 'arm',
      TARGETVARIANT: 'v7',
      BUILDPLATFORM: 'linux/amd64',
      BUILDOS: 'linux',
      BUILDARCH: 'amd64',
      BUILDVARIANT: '',
    });
  });

  it('arm64 is spelt linux/arm64 with an empty variant, as BuildKit does', () => {
    expect(platformArgs(arm64, arm64).get('TARGETPLATFORM')).toBe('linux/arm64');
    expect(platformArgs({ os: 'linux', architecture: 'aarch64' }, arm64).get('TARGETVARIANT')).toBe('');
  });

  it('FROM --platform=$BUILDPLATFORM resolves in the global scope; stages need ARG TARGETARCH', () => {
    const p = plan('FROM --platform=$BUILDPLATFORM golang AS build\nWORKDIR /x$TARGETARCH\nARG TARGETOS TARGETARCH\nWORKDIR /$TARGETOS/$TARGETARCH\n', {
      platform: arm64,
      buildPlatform: amd64,
    });
    expect(p.target.platform).toEqual({ os: 'linux', architecture: 'amd64' });
    const paths = evaluateStage(p, p.target)
      .steps.filter((s) => s.instruction.kind === 'WORKDIR')
      .map((s) => (s.instruction as InstructionOf<'WORKDIR'>).path);
    expect(paths).toEqual(['/x', '/linux/arm64']);
  });

  it('proxy build args reach RUN without an ARG', () => {
    const p = plan('FROM scratch\nRUN true\n', { buildArgs: { HTTP_PROXY: 'http://proxy:3128', OTHER: 'x' } });
    expect(evaluateStage(p, p.target).steps[0]!.runEnv).toEqual(['HTTP_PROXY=http://proxy:3128']);
  });

  it('RUN sees ARG values and ENV; the image env keeps only ENV', () => {
    const p = plan('FROM scratch\nARG A=1\nENV B=2\nRUN true\n');
    const ev = evaluateStage(p, p.target, { baseEnv: ['PATH=/bin'] });
    expect(ev.steps[2]!.runEnv).toEqual(['A=1', 'PATH=/bin', 'B=2']);
    expect(ev.env).toEqual(['PATH=/bin', 'B=2']);
  });
});

describe('stages and FROM', () => {
  it('scratch, images and earlier stages (case-insensitive) as bases', () => {
    const p = plan('FROM scratch AS Base\nFROM BASE AS two\nFROM docker.io/library/alpine:3\nCOPY --from=two / /\n');
    expect(p.stages.map((s) => s.base)).toEqual([{ kind: 'scratch' }, { kind: 'stage', index: 0 }, { kind: 'image', ref: 'docker.io/library/alpine:3' }]);
  });

  it('FROM a name defined only later is an image, not a stage', () => {
    const p = plan('FROM later AS first\nFROM scratch AS later\nCOPY --from=first / /\n');
    expect(p.stages.find((s) => s.index === 0)!.base).toEqual({ kind: 'image', ref: 'later' });
  });

  it('a blank base after expansion is an error', () => {
    expect(planError('ARG IMG\nFROM $IMG\n').message).toBe('Containerfile:2: FROM: base name ($IMG) should not be blank');
  });

  it('an invalid --platform is an error at the FROM', () => {
    expect(planError('FROM --platform=linux a\n').message).toBe('Containerfile:1: FROM: --platform: invalid platform "linux": expected os/arch[/variant]');
  });

  it('duplicate stage names are refused', () => {
    expect(planError('FROM a AS x\nFROM b AS X\n').message).toBe('Containerfile:2: FROM: duplicate stage name "x" (first defined on line 1)');
  });
});

describe('planStages: target pruning and dependency order', () => {
  const file = [
    'FROM alpine AS base', //                    0
    'FROM base AS deps', //                      1  needs 0
    'FROM golang AS tools', //                   2
    'FROM scratch AS unused', //                 3
    'FROM base AS build', //                     4  needs 0, 1 (copy), 2 (mount)
    'COPY --from=deps /d /d',
    'RUN --mount=type=cache,target=/c,from=tools --mount=from=busybox,target=/bb make',
    'FROM scratch AS final', //                  5  needs 4 and 2 by index
    'COPY --from=build /out /out',
    'COPY --from=2 /bin/tool /tool',
    'COPY --from=registry.example/img:1 /x /x',
  ].join('\n');

  it('keeps only what the target needs, dependencies first, with edges', () => {
    const p = plan(file);
    expect(p.stages.map((s) => s.name)).toEqual(['base', 'deps', 'tools', 'build', 'final']);
    expect(Object.fromEntries(p.stages.map((s) => [s.name, s.dependsOn]))).toEqual({
      base: [],
      deps: [0],
      tools: [],
      build: [0, 1, 2],
      final: [4, 2],
    });
    expect(p.target.name).toBe('final');
    expect(p.stages.find((s) => s.name === 'final')!.images).toEqual(['registry.example/img:1']);
    expect(p.stages.find((s) => s.name === 'build')!.images).toEqual(['busybox']);
  });

  it('--target picks an earlier stage and prunes the rest', () => {
    expect(plan(file, { target: 'DEPS' }).stages.map((s) => s.name)).toEqual(['base', 'deps']);
    expect(plan(file, { target: 'unused' }).stages.map((s) => s.name)).toEqual(['unused']);
  });

  it('COPY --from may name a later stage; the order puts it first', () => {
    const p = plan('FROM scratch AS a\nCOPY --from=b / /\nFROM scratch AS b\n', { target: 'a' });
    expect(p.stages.map((s) => s.name)).toEqual(['b', 'a']);
  });

  it('--from values expand with the stage ARGs', () => {
    const p = plan('FROM scratch AS src\nFROM scratch\nARG FROM_STAGE=src\nCOPY --from=$FROM_STAGE / /\n');
    expect(p.target.dependsOn).toEqual([0]);
  });

  it.each([
    ['FROM scratch\nCOPY --from=nope2 / /\n', { target: 'x' }, 'Containerfile: target stage "x" could not be found'],
    ['FROM scratch AS build\n', { target: 'buld' }, 'Containerfile: target stage "buld" could not be found (did you mean build?)'],
    ['FROM scratch\nCOPY --from=3 / /\n', {}, 'Containerfile:2: COPY: --from=3: index out of bounds (the file has 1 stages)'],
    ['FROM scratch AS a\nCOPY --from=a / /\n', {}, 'Containerfile:2: COPY: circular dependency detected on stage: a (--from=a is the stage itself)'],
    ['FROM scratch AS a\nCOPY --from=b / /\nFROM scratch AS b\nCOPY --from=a / /\n', {}, 'circular dependency detected on stage: '],
    ['FROM scratch\nARG X\nCOPY --from=$X / /\n', {}, 'Containerfile:3: COPY: --from must not be empty'],
    ['FROM scratch\nRUN --mount=from=5,target=/x true\n', {}, 'Containerfile:2: RUN: --mount from=5: index out of bounds (the file has 1 stages)'],
  ])('%j %j fails', (text, opts, message) => {
    expect(planError(text, opts).message).toContain(message);
  });
});

describe('evaluateStage: what the builder expands', () => {
  const p = plan(
    [
      'FROM scratch',
      'ARG USER=app DIR=/srv PORT=8080 MODE=0640',
      'ENV HOME=/home/$USER GREETING="hello  world" LEGACY_OK=1',
      'ENV OLD value with $USER "quotes"',
      'LABEL "org.opencontainers.image.title"="$USER image" dir=$DIR',
      'WORKDIR ${DIR}/app',
      'USER ${USER}:${USER}',
      'EXPOSE $PORT 9000/udp',
      'VOLUME ["$DIR/data"]',
      'STOPSIGNAL SIG${SIG:-TERM}',
      'COPY --chown=$USER --chmod=$MODE --exclude=$DIR/tmp src/$USER "$DIR"/',
      'RUN --mount=type=cache,target=$HOME/.cache,id=cache-$USER echo $HOME',
      'CMD echo $HOME',
    ].join('\n'),
  );
  const steps = evaluateStage(p, p.target).steps.map((s) => s.instruction);

  it.each([
    [
      1,
      {
        pairs: [
          { key: 'HOME', value: '/home/app' },
          { key: 'GREETING', value: 'hello  world' },
          { key: 'LEGACY_OK', value: '1' },
        ],
      },
    ],
    [2, { pairs: [{ key: 'OLD', value: 'value with app quotes' }], legacy: true }],
    [
      3,
      {
        pairs: [
          { key: 'org.opencontainers.image.title', value: 'app image' },
          { key: 'dir', value: '/srv' },
        ],
      },
    ],
    [4, { path: '/srv/app' }],
    [5, { user: 'app:app' }],
    [6, { ports: ['8080', '9000/udp'] }],
    [7, { paths: ['/srv/data'] }],
    [8, { signal: 'SIGTERM' }],
    [9, { chown: 'app', chmod: '0640', exclude: ['/srv/tmp'], sources: [{ kind: 'path', path: 'src/app' }], dest: '/srv/' }],
    [10, { mounts: [{ type: 'cache', target: '/home/app/.cache', id: 'cache-app' }], command: { form: 'shell', command: 'echo $HOME' } }],
    [11, { command: { form: 'shell', command: 'echo $HOME' } }],
  ])('step %i', (i, want) => {
    expect(steps[i]).toMatchObject(want);
  });

  it('ARG steps report the values they took', () => {
    expect(steps[0]).toMatchObject({
      args: [
        { name: 'USER', default: 'app' },
        { name: 'DIR', default: '/srv' },
        { name: 'PORT', default: '8080' },
        { name: 'MODE', default: '0640' },
      ],
    });
  });

  it('ENV pairs on one line see the values from before the line (reference example)', () => {
    const q = plan('FROM scratch\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n');
    const envs = evaluateStage(q, q.target).env;
    expect(envs).toEqual(['abc=bye', 'def=hello', 'ghi=bye']);
  });

  it.each(['SIGTERM', 'sigquit', 'KILL', '9', 'SIGRTMIN+3', 'RTMAX-2', 'SIGWINCH'])('STOPSIGNAL %s is a signal', (sig) => {
    const q = plan(`FROM scratch\nSTOPSIGNAL ${sig}\n`);
    expect(evaluateStage(q, q.target).steps[0]!.instruction).toMatchObject({ signal: sig });
  });

  it('--chown with a variable that is set, or a default, is fine', () => {
    const q = plan('FROM scratch\nARG U=app\nCOPY --chown=$U:${G:-staff} a /b\n');
    expect(evaluateStage(q, q.target).steps[1]!.instruction).toMatchObject({ chown: 'app:staff' });
  });

  it('variables from the base image env expand too', () => {
    const q = plan('FROM alpine\nWORKDIR $PATH_DIR/x\n');
    expect(evaluateStage(q, q.target, { baseEnv: ['PATH_DIR=/opt'] }).steps[0]!.instruction).toMatchObject({ path: '/opt/x' });
  });

  it.each([
    ['FROM scratch\nARG M=abc\nCOPY --chmod=$M a /b\n', 'Containerfile:3: COPY: --chmod requires an octal mode, got "abc"'],
    ['FROM scratch\nWORKDIR ${NEED:?set NEED}\n', 'Containerfile:2: WORKDIR: NEED: set NEED (in "${NEED:?set NEED}")'],
    ['FROM scratch\nENV A=${B\n', "Containerfile:2: ENV: syntax error: missing '}'"],
    ['FROM scratch\nARG S=wide\nRUN --mount=type=cache,target=/c,sharing=$S true\n', 'Containerfile:3: RUN: --mount: unsupported sharing value "wide"'],
    ['FROM scratch\nEXPOSE ${P:-http}\n', 'Containerfile:2: EXPOSE: invalid port "http"'],
    // A silent root owner is a trap: buildah refuses these, and so do we.
    [
      'FROM scratch\nARG UNSET\nCOPY --chown=${UNSET}:${UNSET} a /b\n',
      'Containerfile:3: COPY: --chown=${UNSET}:${UNSET}: the user is empty: $UNSET is not set',
    ],
    ['FROM scratch\nCOPY --chown=app:$NOGROUP a /b\n', 'Containerfile:2: COPY: --chown=app:$NOGROUP: the group is empty: $NOGROUP is not set'],
    ['FROM scratch\nADD --chown=$U a /b\n', 'Containerfile:2: ADD: --chown=$U: the user is empty: $U is not set'],
    ['FROM scratch\nSTOPSIGNAL SIGFOO\n', 'Containerfile:2: STOPSIGNAL: invalid signal "SIGFOO"'],
    ['FROM scratch\nSTOPSIGNAL 0\n', 'Containerfile:2: STOPSIGNAL: invalid signal "0"'],
    ['FROM scratch\nSTOPSIGNAL RTMIN+16\n', 'Containerfile:2: STOPSIGNAL: invalid signal "RTMIN+16"'],
  ])('expansion errors carry file:line (at planning or evaluation): %j', (text, message) => {
    expect(() => {
      const q = plan(text);
      evaluateStage(q, q.target);
    }).toThrow(message);
  });
});

describe('ONBUILD triggers of a base image', () => {
  it('are parsed and run first, expanded in the child stage, reported at its FROM line', () => {
    const q = plan('ARG X=1\nFROM base-with-triggers\nARG APP=/app\nRUN true\n');
    const ev = evaluateStage(q, q.target, { onBuild: ['COPY . $APP_DIR/src', 'RUN echo built'], baseEnv: ['APP_DIR=/srv'] });
    expect(ev.steps.map((s) => [s.instruction.kind, s.onBuild ?? false, s.instruction.line])).toEqual([
      ['COPY', true, 2],
      ['RUN', true, 2],
      ['ARG', false, 3],
      ['RUN', false, 4],
    ]);
    expect(ev.steps[0]!.instruction).toMatchObject({ dest: '/srv/src' });
  });

  it('the stored expression of an ONBUILD round-trips through applyOnBuild', () => {
    const cf = parseContainerfile('FROM scratch\nONBUILD RUN <<EOT\necho hi\nEOT\n');
    const ob = cf.instructions[1] as InstructionOf<'ONBUILD'>;
    const [again] = applyOnBuild([ob.expression], { file: 'Containerfile', line: 1 });
    expect(again).toMatchObject({ kind: 'RUN', heredocs: [{ name: 'EOT', content: 'echo hi\n' }] });
  });

  it.each([
    ['ONBUILD RUN x', "Containerfile:7: ONBUILD: ONBUILD isn't allowed as an ONBUILD trigger"],
    ['FROM x', "Containerfile:7: ONBUILD: FROM isn't allowed as an ONBUILD trigger"],
    ['RUNN x', 'Containerfile:7: ONBUILD: base image trigger "RUNN x": unknown instruction "RUNN" (did you mean RUN?)'],
    ['RUN a\nRUN b', 'Containerfile:7: ONBUILD: base image trigger "RUN a\nRUN b" should be a single instruction'],
  ])('bad trigger %j', (trigger, message) => {
    expect(() => applyOnBuild([trigger], { file: 'Containerfile', line: 7 })).toThrow(message);
  });
});
