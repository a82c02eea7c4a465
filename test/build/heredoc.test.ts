import { describe, expect, it } from 'vitest';
import { ContainerfileError, parseContainerfile, planStages, evaluateStage, runScript, type InstructionOf } from '../../src/build/containerfile/index.js';

function inst<K extends 'RUN' | 'COPY' | 'ADD' | 'ONBUILD'>(kind: K, body: string): InstructionOf<K> {
  const cf = parseContainerfile(`FROM scratch\n${body}`, { file: 'Containerfile' });
  return cf.instructions.find((i): i is InstructionOf<K> => i.kind === kind)!;
}

describe('heredocs (reference: "Here-Documents")', () => {
  it('RUN <<EOT: the body is the script; the next instruction follows the terminator', () => {
    const cf = parseContainerfile('FROM scratch\nRUN <<EOT\n  apt-get update\n  apt-get install -y vim\nEOT\nUSER app\n');
    const run = cf.instructions[1] as InstructionOf<'RUN'>;
    expect(run.heredocs).toEqual([{ name: 'EOT', content: '  apt-get update\n  apt-get install -y vim\n', expand: true, chomp: false, fd: 0 }]);
    expect(run.line).toBe(2);
    expect(run.endLine).toBe(5);
    expect(runScript(run)).toEqual({ kind: 'shell', script: '  apt-get update\n  apt-get install -y vim\n' });
    expect(cf.instructions[2]).toMatchObject({ kind: 'USER', line: 6 });
  });

  it('a body whose first line is #! becomes an executable file run directly', () => {
    const run = inst('RUN', 'RUN <<EOT\n#!/usr/bin/env python3\nprint("hi")\nEOT\n');
    expect(runScript(run)).toEqual({ kind: 'file', name: 'EOT', content: '#!/usr/bin/env python3\nprint("hi")\n' });
  });

  it('a heredoc fed to a command goes to the shell with the line (RUN python3 <<EOF)', () => {
    const run = inst('RUN', 'RUN python3 <<EOF > /out\nprint(1)\nEOF\n');
    expect(runScript(run)).toEqual({ kind: 'shell', script: 'python3 <<EOF > /out\nprint(1)\nEOF' });
  });

  it('several heredocs on one line are read in order', () => {
    const run = inst('RUN', 'RUN cat <<A > /a && cat <<B > /b\nfirst\nA\nsecond\nB\n');
    expect(run.heredocs.map((h) => [h.name, h.content])).toEqual([
      ['A', 'first\n'],
      ['B', 'second\n'],
    ]);
    expect(runScript(run)).toEqual({ kind: 'shell', script: 'cat <<A > /a && cat <<B > /b\nfirst\nA\nsecond\nB' });
  });

  it('<<- strips leading tabs from the body and allows a tab-indented terminator', () => {
    const copy = inst('COPY', 'COPY <<-EOT /f\n\tindented\n\t\ttwice\n    spaces stay\n\tEOT\n');
    expect(copy.sources).toEqual([{ kind: 'heredoc', name: 'EOT', content: 'indented\ntwice\n    spaces stay\n', expand: true }]);
    const run = inst('RUN', 'RUN <<-EOT\n\techo hi\n\tEOT\n');
    expect(runScript(run)).toEqual({ kind: 'shell', script: 'echo hi\n' });
  });

  it('without <<- a tab-indented terminator is just body text', () => {
    expect(() => parseContainerfile('FROM scratch\nRUN <<EOT\n\tEOT\n')).toThrow(ContainerfileError);
  });

  it.each([
    ['<<"EOT"', false],
    ["<<'EOT'", false],
    ['<<E"O"T', false],
    ['<<EOT', true],
  ])('%s: quoting any part of the marker disables expansion (expand=%s)', (marker, expand) => {
    const copy = inst('COPY', `COPY ${marker} /f\n$HOME\nEOT\n`);
    expect(copy.sources[0]).toMatchObject({ kind: 'heredoc', name: 'EOT', expand });
  });

  it('COPY with several heredocs and a path, in order', () => {
    const copy = inst('COPY', 'COPY <<one <<two file.txt /etc/\n1\none\n2\ntwo\n');
    expect(copy.sources).toEqual([
      { kind: 'heredoc', name: 'one', content: '1\n', expand: true },
      { kind: 'heredoc', name: 'two', content: '2\n', expand: true },
      { kind: 'path', path: 'file.txt' },
    ]);
    expect(copy.dest).toBe('/etc/');
  });

  it('ADD takes heredocs too; an empty body is an empty file', () => {
    expect(inst('ADD', 'ADD <<EOF /empty\nEOF\n').sources).toEqual([{ kind: 'heredoc', name: 'EOF', content: '', expand: true }]);
  });

  it('fd prefixes (3<<EOT) are recorded', () => {
    expect(inst('RUN', 'RUN cat 3<<EOT\nx\nEOT\n').heredocs[0]!.fd).toBe(3);
  });

  it.each([
    ['RUN echo "<<EOT"\n', 'a quoted marker is text'],
    ['RUN ["cat", "<<EOT"]\n', 'exec form has no heredocs'],
    ['RUN echo a<<<b\n', 'a here-string is not a heredoc'],
    ['RUN cat<<EOT\n', 'a marker glued to a word is not one'],
    ['LABEL x="<<EOT"\n', 'only RUN, COPY and ADD take heredocs'],
  ])('no heredoc: %s (%s)', (body) => {
    const cf = parseContainerfile(`FROM scratch\n${body}USER u\n`);
    expect(cf.instructions).toHaveLength(3);
  });

  it('heredoc bodies may contain comment-like and continuation-like lines', () => {
    const run = inst('RUN', 'RUN <<EOT\n# not a comment \\\n\nEOT\n');
    expect(run.heredocs[0]!.content).toBe('# not a comment \\\n\n');
  });

  it('ONBUILD RUN <<EOT keeps the body in the stored trigger', () => {
    const ob = inst('ONBUILD', 'ONBUILD RUN <<EOT\necho hi\nEOT\n');
    expect(ob.expression).toBe('RUN <<EOT\necho hi\nEOT');
    expect(ob.trigger).toMatchObject({ kind: 'RUN', heredocs: [{ name: 'EOT', content: 'echo hi\n' }] });
  });

  it('an unterminated heredoc is an error at the instruction line', () => {
    expect(() => parseContainerfile('FROM scratch\nRUN <<EOT\necho\n')).toThrow(
      'Containerfile:2: RUN: unterminated heredoc <<EOT (no line "EOT" before the end of the file)',
    );
  });

  it('a heredoc cannot be the COPY destination', () => {
    expect(() => parseContainerfile('FROM scratch\nCOPY a <<EOT\nx\nEOT\n')).toThrow('Containerfile:2: COPY: COPY cannot accept a heredoc as a destination');
  });

  it('COPY heredoc bodies expand $vars but keep quotes; quoted markers stay literal', () => {
    const cf = parseContainerfile(`FROM scratch\nARG NAME=world\nCOPY <<EOT /a\nhello "$NAME" '\${NAME}' \\$NAME\nEOT\nCOPY <<'EOT' /b\nhello $NAME\nEOT\n`);
    const plan = planStages(cf, {});
    const steps = evaluateStage(plan, plan.target).steps;
    expect(steps[1]!.instruction).toMatchObject({ sources: [{ content: `hello "world" 'world' $NAME\n` }] });
    expect(steps[2]!.instruction).toMatchObject({ sources: [{ content: 'hello $NAME\n' }] });
  });
});
