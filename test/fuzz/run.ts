/**
 * `make fuzz`: runs every fuzz target (or FUZZ_TARGETS) for FUZZ_SECONDS each, one child process per
 * target (so a hang or a crash of the process itself is caught by a watchdog, with the input that
 * caused it), and prints one line per target: executions, coverage reached, findings. Exits 1 when
 * any target found something; findings are written under FUZZ_FINDINGS with a reproduction command.
 *
 *   node --import ./hack/lib/ts-resolve.ts test/fuzz/run.ts                     all targets
 *   node --import ./hack/lib/ts-resolve.ts test/fuzz/run.ts --child <target>    one target, in this process
 *   node --import ./hack/lib/ts-resolve.ts test/fuzz/run.ts --repro <target> <file>   replay one input
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { REPO_ROOT } from './lib/corpus.js';
import { execute, fuzz, reproCommand, type FuzzReport } from './lib/engine.js';
import { TARGETS, targetNamed } from './targets/index.js';

const SECONDS = Number(process.env.FUZZ_SECONDS ?? 60);
const FINDINGS = resolve(REPO_ROOT, process.env.FUZZ_FINDINGS ?? 'test/fuzz/findings');
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const RESULT = 'FUZZ-RESULT ';
/** Type stripping cannot run src/ (parameter properties): the children transform types. */
const NODE_FLAGS = ['--experimental-transform-types', '--no-warnings=ExperimentalWarning', '--import', './hack/lib/ts-resolve.ts'];

async function child(name: string): Promise<void> {
  const t = targetNamed(name);
  mkdirSync(join(FINDINGS, name), { recursive: true });
  const report = await fuzz(t, {
    seconds: SECONDS,
    seed: SEED,
    coverage: process.env.FUZZ_COVERAGE !== '0',
    findingsDir: FINDINGS,
    currentFile: join(FINDINGS, name, '.current'),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  const slim = { ...report, findings: report.findings.map((f) => ({ kind: f.kind, summary: f.summary, file: f.file })) };
  process.stdout.write(`${RESULT}${JSON.stringify(slim)}\n`);
  // A target may leave handles open (a zstd worker, a timer): the report is out, leave now.
  process.exit(0);
}

async function repro(name: string, file: string): Promise<void> {
  const t = targetNamed(name);
  await t.setup?.();
  const r = await execute(t, new Uint8Array(readFileSync(file)));
  await t.teardown?.();
  if (r.error === undefined) {
    console.log(`${name}: ${file}: contract kept (${r.ms.toFixed(1)} ms of CPU)`);
    process.exit(0);
  }
  console.log(`${name}: ${file}: contract broken (${r.ms.toFixed(1)} ms of CPU)`);
  console.log(r.error instanceof Error ? r.error.stack : String(r.error));
  if (r.error instanceof Error && r.error.cause instanceof Error) console.log(`caused by: ${r.error.cause.stack}`);
  process.exit(1);
}

type Slim = Omit<FuzzReport, 'findings'> & { findings: Array<{ kind: string; summary: string; file?: string }> };

function runChild(name: string): Promise<{ report?: Slim; hang?: string; exit?: string }> {
  return new Promise((done) => {
    const proc = spawn(process.execPath, [...NODE_FLAGS, 'test/fuzz/run.ts', '--child', name], {
      cwd: REPO_ROOT,
      env: { ...process.env, FUZZ_SEED: String(SEED) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    proc.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    // The child checks the clock between cases; one case running 60 s past the end is a hang.
    let hung = false;
    const watchdog = setTimeout(
      () => {
        hung = true;
        proc.kill('SIGKILL');
      },
      (SECONDS + 60) * 1000,
    );
    proc.on('close', (code, signal) => {
      clearTimeout(watchdog);
      const line = out.split('\n').find((l) => l.startsWith(RESULT));
      if (line) return done({ report: JSON.parse(line.slice(RESULT.length)) as Slim });
      const current = join(FINDINGS, name, '.current');
      // Exit 13 is Node's "unsettled top-level await": the case awaited a promise nothing will settle.
      const stuck = hung || code === 13;
      if (existsSync(current)) {
        const kept = join(FINDINGS, name, `${stuck ? 'hang' : 'exit'}-${Date.now()}`);
        copyFileSync(current, kept);
        return done(stuck ? { hang: `${kept}${hung ? ' (watchdog)' : ' (a promise never settled: exit 13)'}` } : { exit: `${kept} (exit ${code ?? signal})` });
      }
      done({ exit: `exit ${code ?? signal}, no input recorded` });
    });
  });
}

async function parent(): Promise<void> {
  const wanted = (process.env.FUZZ_TARGETS ?? '').split(/[\s,]+/).filter(Boolean);
  const targets = wanted.length > 0 ? wanted.map(targetNamed) : TARGETS;
  console.log(`fuzzing ${targets.length} targets for ${SECONDS} s each (seed ${SEED}; findings in ${FINDINGS})`);
  let failed = 0;
  for (const t of targets) {
    rmSync(join(FINDINGS, t.name, '.current'), { force: true });
    const r = await runChild(t.name);
    if (r.report) {
      const rep = r.report;
      const cov = rep.blocks === undefined ? 'coverage off' : `blocks ${rep.blocks}, functions ${rep.functions}/${rep.functionsKnown}`;
      console.log(
        `${t.name.padEnd(18)} execs ${String(rep.executions).padStart(8)} (${Math.round(rep.executions / rep.seconds)}/s)  ${cov}  corpus ${rep.corpus}+${rep.discovered}  findings ${rep.findings.length}`,
      );
      for (const f of rep.findings) console.log(`    ${f.kind}: ${f.summary}\n      ${f.file ? reproCommand(t.name, f.file) : ''}`);
      if (rep.findings.length > 0) failed++;
    } else {
      failed++;
      console.log(`${t.name.padEnd(18)} ${r.hang ? `HANG: input kept in ${r.hang}` : `DIED: ${r.exit}`}`);
      if (r.hang) console.log(`      ${reproCommand(t.name, r.hang.split(' ')[0]!)}`);
    }
  }
  if (failed > 0) {
    console.log(`${failed} target(s) broke their contract`);
    process.exit(1);
  }
}

const [mode, a, b] = process.argv.slice(2);
if (mode === '--child' && a) await child(a);
else if (mode === '--repro' && a && b) await repro(a, b);
else await parent();
