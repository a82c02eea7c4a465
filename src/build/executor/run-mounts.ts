import { createHash, randomBytes } from 'node:crypto';
import { chown, cp, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, posix, relative, sep } from 'node:path';
import type { Mount } from '../containerfile/index.js';
import type { BindMount } from '../../runtime/spec.js';
import { resolveInRoot } from '../../runtime/unpack/index.js';
import { errorMessage } from '../../util/errors.js';
import { BuildStepError, SourceNotFoundError, type StepLocation } from './errors.js';
import type { BuildRun } from './steps.js';
import { hashCopyInputs } from '../layers/copy.js';
import { copyOwners } from '../layers/owners.js';
import { ignoreFilteredView } from '../context/view.js';
import type { BuildContext } from '../context/source.js';

/** What `RUN --mount=...` turns into for the runtime, plus what the cache key needs to know. */
export interface RunMounts {
  binds: BindMount[];
  tmpfs: string[];
  env: string[];
  /** Container paths the mounts occupy: mount points runc creates there are not part of the layer. */
  targets: string[];
  /** Cache-relevant description (content hashes of bound context dirs; never secret values). */
  key: unknown[];
}

function absTarget(target: string, workdir: string): string {
  return target.startsWith('/') ? posix.normalize(target) : posix.join(workdir || '/', target);
}

/**
 * Prepares each mount: cache dirs live in the store (`build-cache-mounts/<hash of id>`), secrets
 * come from `--secret` files, binds from the context, a finished stage or an image. A read-write
 * bind gets a private copy, as BuildKit discards writes to it.
 */
export async function prepareMounts(run: BuildRun, mounts: readonly Mount[], workdir: string, loc: StepLocation): Promise<RunMounts> {
  const out: RunMounts = { binds: [], tmpfs: [], env: [], targets: [], key: [] };
  let sshCount = 0;
  for (const m of mounts) {
    switch (m.type) {
      case 'cache': {
        const target = absTarget(m.target, workdir);
        // With from=, the cache starts as a copy of that stage's or image's `source` directory (as
        // BuildKit): a cache of its own, named by the id and what seeded it, so another seed never
        // finds this one's contents.
        const seed = m.from !== undefined ? await cacheSeed(run, m.from, m.source ?? '/', loc) : undefined;
        const name = createHash('sha256')
          .update(m.id)
          .update(seed ? `\0${seed.key}\0${m.source ?? '/'}` : '')
          .digest('hex')
          .slice(0, 32);
        const dir = join(run.store.root, 'build-cache-mounts', name);
        const fresh = await stat(dir).then(
          () => false,
          () => true,
        );
        if (fresh) {
          if (seed) {
            // Copied next to the cache and renamed: a failed copy leaves no half-seeded cache.
            const tmp = `${dir}.seed-${randomBytes(6).toString('hex')}`;
            try {
              await cp(seed.path, tmp, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
              await copyOwners(seed.path, tmp);
              await rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
                // A parallel step seeded it first: theirs is the same copy.
                if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
              });
            } finally {
              await rm(tmp, { recursive: true, force: true });
            }
          } else await mkdir(dir, { recursive: true, mode: m.mode ? parseInt(m.mode, 8) : 0o755 });
          if (m.uid !== undefined || m.gid !== undefined) await chown(dir, Number(m.uid ?? 0), Number(m.gid ?? 0));
        }
        out.binds.push({ source: dir, destination: target, readonly: m.readonly });
        out.targets.push(target);
        out.key.push({ type: 'cache', target, id: m.id, readonly: m.readonly, ...(seed ? { from: seed.key, source: m.source ?? '/' } : {}) });
        break;
      }
      case 'tmpfs': {
        const target = absTarget(m.target, workdir);
        out.tmpfs.push(`${target}:exec,dev${m.size ? `,size=${m.size}` : ''}`);
        out.targets.push(target);
        out.key.push({ type: 'tmpfs', target, size: m.size ?? null });
        break;
      }
      case 'secret': {
        const src = run.opts.secrets?.get(m.id);
        if (src === undefined) {
          if (m.required) throw new BuildStepError(loc, `secret "${m.id}" is required but was not given (--secret id=${m.id},src=PATH or id=${m.id},env=VAR)`);
          break;
        }
        if (m.env !== undefined) {
          const value = 'value' in src ? src.value : await readFile(src.file, 'utf8');
          out.env.push(`${m.env}=${value.replace(/\n$/, '')}`);
        }
        if (m.target !== undefined) {
          const target = absTarget(m.target, workdir);
          out.binds.push({ source: 'file' in src ? src.file : await secretFile(run, src.value), destination: target, readonly: true });
          out.targets.push(target);
        }
        // A changed secret must not invalidate the cache (BuildKit's rule), and its value never goes in a key.
        out.key.push({ type: 'secret', id: m.id, target: m.target ?? null, env: m.env ?? null });
        break;
      }
      case 'bind': {
        const target = absTarget(m.target, workdir);
        let dir: string;
        let contentKey: string;
        const files = m.from === undefined ? run.opts.context : run.namedFiles(m.from);
        if (files) {
          dir = files.dir;
          const source = m.source ?? '.';
          const hash = await hashCopyInputs({ dir, ignore: files.ignore }, { sources: [source], dest: '/', workdir: '/' }).catch((err: unknown) => {
            // The copy planner words its errors for COPY: say what the user wrote instead.
            const detail = errorMessage(err).replace(/^COPY source "[^"]*": /, '');
            throw new SourceNotFoundError(`${loc.file}:${loc.line}: RUN --mount=type=bind,source=${source}: ${detail}`, { cause: err });
          });
          contentKey = `${m.from === undefined ? 'context' : `named:${m.from.toLowerCase()}`}:${hash}`;
        } else {
          const src = await run.source(m.from!);
          dir = await run.rootfs(src.state);
          contentKey = src.key;
        }
        let path = await resolveInRoot(dir, m.source ?? '/');
        const st = await stat(path).catch(() => undefined);
        if (!st) {
          throw new SourceNotFoundError(
            `${loc.file}:${loc.line}: RUN --mount=type=bind,source=${m.source ?? '/'}: not found in ${m.from ? `"${m.from}"` : 'the build context'}`,
          );
        }
        // Only what the ignore file lets through, as BuildKit's context holds (a hidden single file was refused above).
        if (files?.ignore.source && st.isDirectory()) path = await filteredView(run, dir, path, files);
        if (!m.readonly) {
          const copy = join(
            run.workDir,
            `bind-${createHash('sha256')
              .update(target + Math.random())
              .digest('hex')
              .slice(0, 12)}`,
          );
          await cp(path, copy, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
          path = copy;
        }
        out.binds.push({ source: path, destination: target, readonly: m.readonly });
        out.targets.push(target);
        out.key.push({ type: 'bind', target, source: m.source ?? null, content: contentKey, readonly: m.readonly });
        break;
      }
      case 'ssh': {
        // As BuildKit: the agent socket appears at the target (/run/buildkit/ssh_agent.N by
        // default) and SSH_AUTH_SOCK names it; a mount nobody forwarded is skipped unless required.
        const socket = run.opts.sshAgents?.get(m.id);
        if (socket === undefined) {
          if (m.required)
            throw new BuildStepError(
              loc,
              `RUN --mount=type=ssh: no SSH agent "${m.id}" was forwarded (--ssh ${m.id === 'default' ? 'default' : `${m.id}=SOCKET`}, or $SSH_AUTH_SOCK with --ssh default)`,
            );
          run.opts.reporter?.warn(`${loc.file}:${loc.line}: RUN --mount=type=ssh: no SSH agent "${m.id}" was forwarded; the step runs without one`);
          break;
        }
        if (
          !(await stat(socket).then(
            (s) => s.isSocket(),
            () => false,
          ))
        ) {
          throw new BuildStepError(loc, `RUN --mount=type=ssh: the SSH agent "${m.id}" at ${socket} is not a socket`);
        }
        const target = absTarget(m.target ?? `/run/buildkit/ssh_agent.${sshCount++}`, workdir);
        out.binds.push({ source: socket, destination: target, readonly: false });
        out.targets.push(target);
        out.env.push(`SSH_AUTH_SOCK=${target}`);
        // Which agent is forwarded does not change the result's key (as secrets).
        out.key.push({ type: 'ssh', id: m.id, target });
        break;
      }
    }
  }
  return out;
}

/** The directory a `type=cache,from=X,source=P` mount starts from: P inside stage or image X, a directory. */
async function cacheSeed(run: BuildRun, from: string, source: string, loc: StepLocation): Promise<{ path: string; key: string }> {
  const files = run.namedFiles(from);
  const src = files ? undefined : await run.source(from);
  let path = await resolveInRoot(files ? files.dir : await run.rootfs(src!.state), source);
  const st = await stat(path).catch(() => undefined);
  if (!st) throw new SourceNotFoundError(`${loc.file}:${loc.line}: RUN --mount=type=cache,from=${from},source=${source}: not found in "${from}"`);
  if (!st.isDirectory())
    throw new BuildStepError(loc, `RUN --mount=type=cache,from=${from},source=${source}: not a directory (a cache mount is seeded from a directory)`);
  if (files?.ignore.source) path = await filteredView(run, files.dir, path, files);
  // A files context is keyed by the content of what seeds the cache.
  const key = files
    ? `named:${from.toLowerCase()}:${await hashCopyInputs({ dir: files.dir, ignore: files.ignore }, { sources: [source.replace(/^\/+/, '') || '.'], dest: '/', workdir: '/' })}`
    : src!.key;
  return { path, key };
}

/** Views made in a build, by directory: every RUN that binds the same directory shares one (binds of them are read-only, a rw bind copies). */
const views = new WeakMap<BuildRun, Map<string, Promise<string>>>();

/** A view of `path` (a directory of a context rooted at `root`) without what its ignore file hides, in the build's scratch dir. */
function filteredView(run: BuildRun, root: string, path: string, files: BuildContext): Promise<string> {
  let made = views.get(run);
  if (!made) views.set(run, (made = new Map()));
  let p = made.get(path);
  if (!p) {
    const view = join(run.workDir, `view-${randomBytes(6).toString('hex')}`);
    p = ignoreFilteredView(path, relative(root, path).split(sep).join('/'), files.ignore, view).then(() => view);
    // A failed view (an abort) is not remembered.
    p.catch(() => made.delete(path));
    made.set(path, p);
  }
  return p;
}

/** A secret given as a value, written where only this build's RUN containers see it (removed with the build's scratch dir). */
async function secretFile(run: BuildRun, value: string): Promise<string> {
  const dir = join(run.workDir, `secret-${randomBytes(6).toString('hex')}`);
  await mkdir(dir, { mode: 0o700 });
  const file = join(dir, 'value');
  await writeFile(file, value, { mode: 0o400 });
  return file;
}
