/** Pure logic of the executor and output: config semantics, destinations, the result file. */
import { describe, expect, it } from 'vitest';
import { parseContainerfile, type Instruction } from '../../src/build/containerfile/index.js';
import { applyMetadata, portKeys, resolveWorkdir, setEnv } from '../../src/build/executor/metadata.js';
import { emptyState, type StageState } from '../../src/build/executor/state.js';
import { parseDestination } from '../../src/build/output/destinations.js';
import { encodeResult, RESULT_FILE_LIMIT } from '../../src/build/output/result-file.js';
import { emulationProblem } from '../../src/build/executor/emulation.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostPlatform } from '../../src/oci/platform.js';

function apply(state: StageState, text: string): StageState {
  const cf = parseContainerfile(`FROM scratch\n${text}\n`);
  return cf.instructions.slice(1).reduce((s: StageState, inst: Instruction) => applyMetadata(s, inst), state);
}

const base = (): StageState => ({ ...emptyState({ os: 'linux', architecture: 'amd64' }), config: { Cmd: ['/bin/sh'], Env: ['PATH=/bin', 'A=1'] } });

describe('image config with Docker semantics', () => {
  it('ENTRYPOINT clears a CMD inherited from the base image', () => {
    const s = apply(base(), 'ENTRYPOINT ["/app"]');
    expect(s.config.Entrypoint).toEqual(['/app']);
    expect(s.config.Cmd).toBeNull();
  });

  it('ENTRYPOINT keeps a CMD set earlier in the same stage', () => {
    const s = apply(base(), 'CMD ["--help"]\nENTRYPOINT ["/app"]');
    expect(s.config.Cmd).toEqual(['--help']);
  });

  it('shell-form CMD and ENTRYPOINT use the stage SHELL', () => {
    const s = apply(base(), 'SHELL ["/bin/bash", "-ec"]\nCMD echo hi\nENTRYPOINT exec app');
    expect(s.config.Cmd).toEqual(['/bin/bash', '-ec', 'echo hi']);
    expect(s.config.Entrypoint).toEqual(['/bin/bash', '-ec', 'exec app']);
    expect(apply(base(), 'CMD echo hi').config.Cmd).toEqual(['/bin/sh', '-c', 'echo hi']);
  });

  it('ENV replaces a variable in place and appends new ones', () => {
    expect(setEnv(['PATH=/bin', 'A=1', 'B=2'], 'A', 'x')).toEqual(['PATH=/bin', 'A=x', 'B=2']);
    expect(apply(base(), 'ENV C=3 A=2').config.Env).toEqual(['PATH=/bin', 'A=2', 'C=3']);
  });

  it('EXPOSE expands port ranges and defaults to tcp', () => {
    expect(portKeys('80')).toEqual(['80/tcp']);
    expect(portKeys('53/UDP')).toEqual(['53/udp']);
    expect(portKeys('8000-8002/tcp')).toEqual(['8000/tcp', '8001/tcp', '8002/tcp']);
    expect(Object.keys(apply(base(), 'EXPOSE 80 90-91/udp').config.ExposedPorts ?? {})).toEqual(['80/tcp', '90/udp', '91/udp']);
  });

  it('WORKDIR is relative to the previous one and cleaned', () => {
    expect(resolveWorkdir(undefined, 'app')).toBe('/app');
    expect(resolveWorkdir('/srv/app', '../lib/')).toBe('/srv/lib');
    expect(resolveWorkdir('/srv', '/abs//x/')).toBe('/abs/x');
    expect(apply(base(), 'WORKDIR /a\nWORKDIR b\nWORKDIR ../c').config.WorkingDir).toBe('/a/c');
  });

  it('HEALTHCHECK: exec form is CMD, shell form CMD-SHELL, NONE disables, durations in ns', () => {
    expect(apply(base(), 'HEALTHCHECK --interval=5s CMD ["curl", "-f", "x"]').config.Healthcheck).toEqual({ Test: ['CMD', 'curl', '-f', 'x'], Interval: 5e9 });
    expect(apply(base(), 'HEALTHCHECK --retries=2 CMD curl x').config.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'curl x'], Retries: 2 });
    expect(apply(base(), 'HEALTHCHECK NONE').config.Healthcheck).toEqual({ Test: ['NONE'] });
  });

  it('LABEL merges, VOLUME adds, ONBUILD appends, MAINTAINER sets the author, USER and STOPSIGNAL set', () => {
    const s = apply(base(), 'LABEL a=1 b=2\nLABEL a=3\nVOLUME /v1 /v2\nONBUILD COPY . /src\nMAINTAINER me@example.com\nUSER 1000:1000\nSTOPSIGNAL SIGTERM');
    expect(s.config.Labels).toEqual({ a: '3', b: '2' });
    expect(s.config.Volumes).toEqual({ '/v1': {}, '/v2': {} });
    expect(s.config.OnBuild).toEqual(['COPY . /src']);
    expect(s.author).toBe('me@example.com');
    expect(s.config.User).toBe('1000:1000');
    expect(s.config.StopSignal).toBe('SIGTERM');
  });

  it('never changes the state it was given', () => {
    const b = base();
    apply(b, 'ENV A=9\nLABEL x=y\nCMD ["z"]');
    expect(b.config).toEqual({ Cmd: ['/bin/sh'], Env: ['PATH=/bin', 'A=1'] });
  });
});

describe('build destinations', () => {
  it('a name with a registry host pushes and is kept locally; a bare name stays local; oci: writes a layout', () => {
    const push = parseDestination('registry.example.com/team/app:1');
    expect(push.kind).toBe('push');
    expect(parseDestination('127.0.0.1:5000/app').kind).toBe('push');
    expect(parseDestination('docker://docker.io/library/app:2').kind).toBe('push');
    const local = parseDestination('myapp:dev');
    expect(local).toMatchObject({ kind: 'local', storeName: 'localhost/myapp:dev' });
    expect(parseDestination('localhost/myapp').kind).toBe('local');
    expect(parseDestination('oci:/tmp/layout:v1').kind).toBe('transport');
  });

  it('rejects a malformed name', () => {
    expect(() => parseDestination('UPPER/Case:tag')).toThrow();
  });
});

describe('result file', () => {
  it('writes the success document as the contract says', () => {
    const doc = JSON.parse(
      encodeResult({
        image: 'r/app:1',
        digest: 'sha256:' + 'a'.repeat(64),
        size: 123,
        platforms: [{ platform: 'linux/amd64', digest: 'sha256:' + 'a'.repeat(64) }],
      }),
    );
    expect(doc).toEqual({
      image: 'r/app:1',
      digest: 'sha256:' + 'a'.repeat(64),
      size: 123,
      platforms: [{ platform: 'linux/amd64', digest: 'sha256:' + 'a'.repeat(64) }],
    });
  });

  it('keeps an error under 4096 bytes, with its head and the end of the output', () => {
    const message = `Containerfile:3: RUN make: command exited with code 2\n${'x"\\'.repeat(5000)}\nlast line of output`;
    const text = encodeResult({ error: { reason: 'BuildStepFailed', message } });
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(RESULT_FILE_LIMIT);
    const doc = JSON.parse(text) as { error: { reason: string; message: string } };
    expect(doc.error.reason).toBe('BuildStepFailed');
    expect(doc.error.message.startsWith('Containerfile:3: RUN make')).toBe(true);
    expect(doc.error.message.endsWith('last line of output')).toBe(true);
  });
});

describe('RUN on a foreign architecture', () => {
  it('needs no emulation for the host platform, and names the binfmt_misc entry it lacks otherwise', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stevedore-binfmt-'));
    try {
      expect(await emulationProblem(hostPlatform(), dir)).toBeUndefined();
      const foreign = hostPlatform().architecture === 'arm64' ? { os: 'linux', architecture: 'amd64' } : { os: 'linux', architecture: 'arm64' };
      const qemu = foreign.architecture === 'arm64' ? 'qemu-aarch64' : 'qemu-x86_64';
      expect(await emulationProblem(foreign, dir)).toContain(`${dir}/${qemu} is missing`);
      await writeFile(join(dir, qemu), 'enabled\n');
      expect(await emulationProblem(foreign, dir)).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
