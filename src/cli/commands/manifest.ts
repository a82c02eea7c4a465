import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { InvalidInputError } from '../../util/errors.js';
import { collect, contextFrom, parseBool } from '../options.js';
import { signalOnInterrupt } from '../signals.js';
import { exitWith } from '../exit-codes.js';

interface Common {
  root?: string;
}

const ROOT_HELP = 'store root holding local manifest lists (default: $STEVEDORE_ROOT, /var/lib/stevedore for root, else $XDG_DATA_HOME/stevedore)';

async function engine() {
  return import('../../manifest/list.js');
}

function annotations(list: string[] | undefined, parse: (s: string) => [string, string]): Record<string, string> | undefined {
  if (!list || list.length === 0) return undefined;
  return Object.fromEntries(list.map(parse));
}

/** `stevedore manifest create|add|annotate|inspect|remove|rm|exists|push`, as podman's. */
export function registerManifest(program: Command): void {
  const manifest = program
    .command('manifest')
    .description('create and edit manifest lists (OCI image indexes, Docker manifest lists) and push them (as podman manifest)');

  manifest
    .command('create')
    .description('create a manifest list, optionally adding images to it')
    .argument('<list>', 'list name (local store), or oci:DIR[:REF]')
    .argument('[images...]', 'images to add (docker://, oci:, dir:, archives, or a local store name)')
    .option('--all', 'add every image of each index given')
    .option('--amend', 'add to the list if it exists already')
    .option('--format <oci|v2s2>', 'OCI image index (default) or Docker manifest list', 'oci')
    .option('--tls-verify <bool>', 'require HTTPS and verified certificates', parseBool)
    .option('--creds <user:password>', 'credentials for the registry')
    .option('--authfile <path>', 'auth file')
    .option('--root <dir>', ROOT_HELP)
    .action(
      async (
        name: string,
        images: string[],
        o: Common & { all?: boolean; amend?: boolean; format: string; tlsVerify?: boolean; creds?: string; authfile?: string },
      ) => {
        if (o.format !== 'oci' && o.format !== 'v2s2') throw new InvalidInputError(`--format must be oci or v2s2, got "${o.format}"`);
        const m = await engine();
        const loc = m.listLocation(name, o.root);
        let digest = await m.createList(loc, { format: o.format, amend: o.amend });
        for (const image of images)
          digest = (await m.addToList(loc, image, { all: o.all, storeRoot: o.root, context: contextFrom(o), signal: signalOnInterrupt() })).list;
        process.stdout.write(`${digest}\n`);
      },
    );

  manifest
    .command('add')
    .description('add an image (or, with --all, every image of an index) to a manifest list')
    .argument('<list>', 'list name, or oci:DIR[:REF]')
    .argument('<image>', 'docker://, oci:, dir:, archives, or a local store name')
    .option('--all', 'add every image of an index')
    .option('--annotation <key=value>', 'annotation on the entry; repeatable', collect)
    .option('--arch <arch>', 'architecture recorded for the entry (and picked from an index)')
    .option('--os <os>', 'operating system recorded for the entry')
    .option('--variant <variant>', 'architecture variant')
    .option('--os-version <version>', 'OS version')
    .option('--features <feature>', 'platform features; repeatable', collect)
    .option('--tls-verify <bool>', 'require HTTPS and verified certificates', parseBool)
    .option('--creds <user:password>', 'credentials for the registry')
    .option('--authfile <path>', 'auth file')
    .option('--root <dir>', ROOT_HELP)
    .action(
      async (
        name: string,
        image: string,
        o: Common & {
          all?: boolean;
          annotation?: string[];
          arch?: string;
          os?: string;
          variant?: string;
          osVersion?: string;
          features?: string[];
          tlsVerify?: boolean;
          creds?: string;
          authfile?: string;
        },
      ) => {
        const m = await engine();
        const r = await m.addToList(m.listLocation(name, o.root), image, {
          all: o.all,
          annotations: annotations(o.annotation, m.parseAnnotation),
          arch: o.arch,
          os: o.os,
          variant: o.variant,
          osVersion: o.osVersion,
          features: o.features,
          storeRoot: o.root,
          context: contextFrom(o),
          signal: signalOnInterrupt(),
        });
        process.stdout.write(`${r.list}\n`);
      },
    );

  manifest
    .command('annotate')
    .description('set platform fields and annotations of one entry of a manifest list')
    .argument('<list>', 'list name, or oci:DIR[:REF]')
    .argument('<digest>', "the entry's digest")
    .option('--annotation <key=value>', 'annotation; repeatable', collect)
    .option('--arch <arch>', 'architecture')
    .option('--os <os>', 'operating system')
    .option('--variant <variant>', 'architecture variant')
    .option('--os-version <version>', 'OS version')
    .option('--os-features <feature>', 'OS features; repeatable', collect)
    .option('--features <feature>', 'platform features; repeatable', collect)
    .option('--root <dir>', ROOT_HELP)
    .action(
      async (
        name: string,
        digest: string,
        o: Common & { annotation?: string[]; arch?: string; os?: string; variant?: string; osVersion?: string; osFeatures?: string[]; features?: string[] },
      ) => {
        const m = await engine();
        const d = await m.annotateList(m.listLocation(name, o.root), digest, {
          annotations: annotations(o.annotation, m.parseAnnotation),
          arch: o.arch,
          os: o.os,
          variant: o.variant,
          osVersion: o.osVersion,
          osFeatures: o.osFeatures,
          features: o.features,
        });
        process.stdout.write(`${d}\n`);
      },
    );

  manifest
    .command('inspect')
    .description('print a manifest list (local, or from a registry when there is no local list of that name)')
    .argument('<list>', 'list name, oci:DIR[:REF], or docker://IMAGE')
    .option('--tls-verify <bool>', 'require HTTPS and verified certificates', parseBool)
    .option('--creds <user:password>', 'credentials for the registry')
    .option('--authfile <path>', 'auth file')
    .option('--root <dir>', ROOT_HELP)
    .action(async (name: string, o: Common & { tlsVerify?: boolean; creds?: string; authfile?: string }) => {
      const m = await engine();
      let bytes: Buffer | undefined;
      if (!name.startsWith('docker://')) {
        try {
          bytes = (await m.readList(m.listLocation(name, o.root))).raw.bytes;
        } catch (err) {
          if ((err as { code?: string }).code !== 'MANIFEST_LIST_NOT_FOUND' || name.startsWith('oci:')) throw err;
        }
      }
      if (!bytes) {
        const { parseImageName } = await import('../../transports/index.js');
        const src = await parseImageName(name.startsWith('docker://') ? name : `docker://${name}`).newSource(contextFrom(o));
        try {
          bytes = (await src.getManifest(undefined, { signal: signalOnInterrupt() })).bytes;
        } finally {
          await src.close();
        }
      }
      process.stdout.write(`${JSON.stringify(JSON.parse(bytes.toString('utf8')), null, 4)}\n`);
    });

  manifest
    .command('remove')
    .description('remove an entry from a manifest list')
    .argument('<list>', 'list name, or oci:DIR[:REF]')
    .argument('<digest>', "the entry's digest")
    .option('--root <dir>', ROOT_HELP)
    .action(async (name: string, digest: string, o: Common) => {
      const m = await engine();
      process.stdout.write(`${await m.removeFromList(m.listLocation(name, o.root), digest)}\n`);
    });

  manifest
    .command('rm')
    .description('delete manifest lists (the images they list stay)')
    .argument('<lists...>', 'list names, or oci:DIR[:REF]')
    .option('--root <dir>', ROOT_HELP)
    .action(async (names: string[], o: Common) => {
      const m = await engine();
      for (const name of names) {
        const loc = m.listLocation(name, o.root);
        const digest = await m.deleteList(loc);
        process.stdout.write(`Untagged: ${loc.display}\nDeleted: ${digest.replace(/^sha256:/, '')}\n`);
      }
    });

  manifest
    .command('exists')
    .description('exit 0 if the manifest list exists, 1 if not')
    .argument('<list>', 'list name, or oci:DIR[:REF]')
    .option('--root <dir>', ROOT_HELP)
    .action(async (name: string, o: Common) => {
      const m = await engine();
      const found = await m.readList(m.listLocation(name, o.root)).then(
        () => true,
        (err: { code?: string }) => {
          if (err.code === 'MANIFEST_LIST_NOT_FOUND') return false;
          throw err;
        },
      );
      // podman's status: 1 for "no such list" (the shared error path would make it 125).
      if (!found) await exitWith(1);
    });

  manifest
    .command('push')
    .description('push a manifest list and every image it lists (podman manifest push --all)')
    .argument('<list>', 'list name, or oci:DIR[:REF]')
    .argument('[destination]', "where to push (docker://REGISTRY/REPO:TAG, oci:, ...); default the list's name")
    .option('--all [bool]', 'push the images the list names too (default true; --all=false pushes the list alone)', parseBool, true)
    .option('-f, --format <oci|v2s2>', 'manifest format at the destination (default: as stored)')
    .option('--rm', 'delete the local list after a successful push')
    .option('--digestfile <path>', "write the pushed list's digest to this file")
    .option('--sign-by <fingerprint>', 'GPG-sign the pushed list (lookaside-staging)')
    .option('--sign-passphrase-file <path>', 'file holding the passphrase of the --sign-by key')
    .option('--registries.d <dir>', 'registries.d directory for lookaside signature storage')
    .option('--tls-verify <bool>', 'require HTTPS and verified certificates', parseBool)
    .option('--creds <user:password>', 'credentials for the registry')
    .option('--authfile <path>', 'auth file')
    .option('-q, --quiet', 'print nothing')
    .option('--root <dir>', ROOT_HELP)
    .action(
      async (
        name: string,
        destination: string | undefined,
        o: Common & {
          all: boolean | string;
          format?: string;
          rm?: boolean;
          digestfile?: string;
          signBy?: string;
          signPassphraseFile?: string;
          'registries.d'?: string;
          tlsVerify?: boolean;
          creds?: string;
          authfile?: string;
          quiet?: boolean;
        },
      ) => {
        if (o.format !== undefined && o.format !== 'oci' && o.format !== 'v2s2') throw new InvalidInputError(`--format must be oci or v2s2, got "${o.format}"`);
        const m = await engine();
        const { parseImageName } = await import('../../transports/index.js');
        const loc = m.listLocation(name, o.root);
        const target = destination ?? `docker://${loc.display}`;
        const dest = parseImageName(target);
        const context = { ...contextFrom(o), ...(o['registries.d'] ? { registriesDir: o['registries.d'] } : {}) };
        const signer = o.signBy
          ? await (await import('./gpg-options.js')).copySigner(dest, o.signBy, { passphraseFile: o.signPassphraseFile, context })
          : undefined;
        const signal = signalOnInterrupt();
        const format = o.format as 'oci' | 'v2s2' | undefined;
        const result =
          o.all === false
            ? { digest: await m.pushListOnly(loc, dest, { format, context, signal }), manifests: 1, blobsCopied: 0, blobsReused: 0 }
            : await m.pushList(loc, dest, { format, context, signal });
        if (signer) await signer.sign(result.digest, signal);
        if (o.digestfile) await writeFile(o.digestfile, result.digest);
        if (o.rm) await m.deleteList(loc);
        if (!o.quiet)
          process.stderr.write(
            `Writing manifest list ${result.digest} (${result.manifests} manifests, ${result.blobsCopied} blobs copied, ${result.blobsReused} already present)\n`,
          );
      },
    );
}
