import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { generateCRDs } from '../../src/k8s/crdgen.js';
import { KINDS, type ContainerRunSpec, type ImageBuildSpec, type ImageMirrorSpec, type JSONSchemaProps } from '../../src/k8s/api/index.js';

const crdDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'crds');

/** Every node of a schema with its path. */
function* walk(schema: JSONSchemaProps, path: string): Generator<[string, JSONSchemaProps]> {
  yield [path, schema];
  for (const [name, child] of Object.entries(schema.properties ?? {})) yield* walk(child, `${path}.${name}`);
  if (schema.items) yield* walk(schema.items, `${path}[]`);
  if (schema.additionalProperties) yield* walk(schema.additionalProperties, `${path}{}`);
}

describe('generated CRDs', () => {
  test('committed crds/ equal a fresh generation (run `make manifests` when this fails)', () => {
    const generated = generateCRDs();
    const committed = readdirSync(crdDir)
      .filter((f) => f.endsWith('.yaml'))
      .sort();
    expect(committed).toEqual([...generated.keys()].sort());
    for (const [name, text] of generated) {
      expect(readFileSync(join(crdDir, name), 'utf8'), `crds/${name} is stale`).toBe(text);
    }
  });

  test('one CRD per kind, namespaced, with status subresource, short names and the stevedore category', () => {
    const byKind = new Map(
      [...generateCRDs().values()].map((text) => {
        const crd = parse(text) as {
          spec: { names: { kind: string; shortNames: string[]; categories: string[] }; scope: string; versions: { subresources: unknown }[] };
        };
        return [crd.spec.names.kind, crd.spec] as const;
      }),
    );
    expect([...byKind.keys()].sort()).toEqual(['ContainerRun', 'ImageBuild', 'ImageMirror']);
    expect(byKind.get('ImageBuild')!.names.shortNames).toEqual(['ib']);
    expect(byKind.get('ImageMirror')!.names.shortNames).toEqual(['im']);
    expect(byKind.get('ContainerRun')!.names.shortNames).toEqual(['crun']);
    for (const spec of byKind.values()) {
      expect(spec.scope).toBe('Namespaced');
      expect(spec.names.categories).toEqual(['stevedore']);
      expect(spec.versions[0]!.subresources).toEqual({ status: {} });
    }
  });

  test('every spec and status field is typed and described', () => {
    for (const kind of KINDS) {
      for (const root of ['spec', 'status'] as const) {
        for (const [path, node] of walk(kind[root].json, `${kind.kind}.${root}`)) {
          expect(node.description, `${path} has no description`).toBeTruthy();
          const typed = node.type !== undefined || node['x-kubernetes-int-or-string'] === true;
          expect(typed, `${path} has no type`).toBe(true);
        }
      }
    }
  });

  test('every kind has Ready, Reason and Age printer columns plus its key fact', () => {
    const facts: Record<string, string> = {
      ImageBuild: '.status.imageDigest',
      ImageMirror: '.status.lastSyncTime',
      ContainerRun: '.status.exitCode',
    };
    for (const kind of KINDS) {
      const names = kind.printerColumns.map((c) => c.name);
      expect(names).toEqual(expect.arrayContaining(['Ready', 'Reason', 'Age']));
      expect(kind.printerColumns.some((c) => c.jsonPath === facts[kind.kind] && !c.priority)).toBe(true);
    }
  });

  test('the TypeScript types follow the schemas (required fields required, enums literal)', () => {
    // Compile-time checks: these assignments only type-check if Infer<> maps the schemas right.
    const mirror: ImageMirrorSpec = {
      source: { registry: { repository: 'registry.example.com/a' } },
      destination: { layout: { claimName: 'pvc' } },
      tags: { semver: '^1' },
    };
    const build: ImageBuildSpec = { source: { inline: { containerfile: 'FROM scratch' } }, output: { image: 'r/x:1' } };
    const run: ContainerRunSpec = { image: 'busybox', network: 'none', restartPolicy: 'OnFailure' };
    // @ts-expect-error network is an enum
    const badRun: ContainerRunSpec = { image: 'busybox', network: 'bridge' };
    // @ts-expect-error destination is required
    const badMirror: ImageMirrorSpec = { source: { registry: { repository: 'r/a' } } };
    expect([mirror, build, run, badRun, badMirror]).toHaveLength(5);
  });
});
