// Admission (CEL rules in the generated CRDs) for ImageMirror and ImageBuild, tried as a tenant bound
// to a namespaced Role on a real API server: each hostile or nonsensical spec is refused with a
// message that names the rule, and a sound one next to it is accepted (so the refusals are the
// rules', not the test's).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION, GROUP, VERSION } from '../../src/k8s/api/common.js';
import type { ImageBuild } from '../../src/k8s/api/imagebuild.js';
import type { ImageMirror } from '../../src/k8s/api/imagemirror.js';
import { startControlPlane, type ControlPlane } from '../../hack/lib/harness/controlplane.js';
import { tenantRequest, tenantSetup } from './tenant.js';

const NS = 'team-adm';
let cp: ControlPlane;
let token: string;

beforeAll(async () => {
  cp = await startControlPlane();
  await cp.installCRDs();
  await cp.createNamespace(NS);
  token = await tenantSetup(cp, NS, 'tenant');
});

afterAll(async () => {
  await cp?.stop();
});

let n = 0;
async function create(plural: string, kind: string, spec: unknown): Promise<{ status: number; message: string }> {
  const path = `/apis/${GROUP}/${VERSION}/namespaces/${NS}/${plural}?dryRun=All`;
  const res = await tenantRequest(cp, token, 'POST', path, { apiVersion: API_VERSION, kind, metadata: { name: `obj-${++n}` }, spec });
  return { status: res.status, message: (res.json as { message?: string } | undefined)?.message ?? res.body };
}

const mirror = (over: Partial<ImageMirror['spec']> = {}): ImageMirror['spec'] => ({
  source: { registry: { repository: 'registry.example.com/team/app' } },
  destination: { registry: { repository: 'mirror.example.com/team/app' } },
  ...over,
});
const build = (over: Partial<ImageBuild['spec']> = {}): ImageBuild['spec'] => ({
  source: { inline: { containerfile: 'FROM scratch\n' } },
  output: { image: 'registry.example.com/team/app:1' },
  ...over,
});

describe('ImageMirror admission', () => {
  it('accepts a sound mirror', async () => {
    expect(await create('imagemirrors', 'ImageMirror', mirror({ tags: { allow: '^v?[0-9.]+$', deny: '.*-rc[0-9]*' } }))).toMatchObject({ status: 201 });
  });

  it.each([
    [
      'source = destination',
      mirror({ destination: { registry: { repository: 'registry.example.com/team/app' } } }),
      /source and destination are the same repository/,
    ],
    ['source = destination, other case', mirror({ destination: { registry: { repository: 'Registry.Example.com/team/app' } } }), /same repository/],
    ['both layouts', mirror({ source: { layout: { claimName: 'usb' } }, destination: { layout: { claimName: 'usb', path: 'out' } } }), /both layouts/],
    ['.. in a layout path', mirror({ source: { layout: { claimName: 'usb', path: 'a/../../etc' } } }), /layout\.path must not contain "\.\."/],
    ['an interval under a minute', mirror({ schedule: { interval: '0s' } }), /schedule\.interval must be at least 1m/],
    ['an invalid allow regex', mirror({ tags: { allow: '(unclosed' } }), /allow/],
    ['an invalid deny regex', mirror({ tags: { deny: '[z-a]' } }), /deny/],
    ['newest 0', mirror({ tags: { newest: 0 } }), /newest/],
  ])('refuses %s', async (_name, spec, message) => {
    const res = await create('imagemirrors', 'ImageMirror', spec);
    expect(res.status, res.message).toBe(422);
    expect(res.message, res.message).toMatch(message);
  });
});

describe('ImageBuild admission', () => {
  it('accepts a sound build with positive resources, a 1s timeout and a non-control-plane toleration', async () => {
    const res = await create(
      'imagebuilds',
      'ImageBuild',
      build({
        timeout: '1s',
        resources: { limits: { cpu: '500m', memory: '1Gi' }, requests: { cpu: 1 } },
        nodeSelector: { 'pool.example.com/builds': 'yes' },
        tolerations: [{ key: 'pool.example.com/builds', operator: 'Exists', effect: 'NoSchedule' }],
      }),
    );
    expect(res, res.message).toMatchObject({ status: 201 });
  });

  it.each([
    ['a negative cpu limit', build({ resources: { limits: { cpu: '-1' } } }), /spec\.resources\.limits\[cpu\]: Invalid value.*must be a positive quantity/],
    [
      'a zero memory request',
      build({ resources: { requests: { memory: '0' } } }),
      /spec\.resources\.requests\[memory\]: Invalid value.*must be a positive quantity/,
    ],
    ['an integer zero', build({ resources: { limits: { cpu: 0 } } }), /must be a positive quantity/],
    ['a timeout of 0s', build({ timeout: '0s' }), /timeout must be at least 1s/],
    ['a timeout of 500ms', build({ timeout: '500ms' }), /timeout must be at least 1s/],
    ['.. in contextDir', build({ contextDir: 'src/../../..' }), /no \.\. segments/],
    ['.. in containerfile', build({ containerfile: '../Containerfile' }), /no \.\. segments/],
    [
      'a control-plane toleration',
      build({ tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists' }] }),
      /never run on control-plane nodes/,
    ],
    ['a toleration of every taint', build({ tolerations: [{ operator: 'Exists' }] }), /a toleration needs a key/],
    ['a control-plane nodeSelector', build({ nodeSelector: { 'node-role.kubernetes.io/master': '' } }), /never run on control-plane nodes/],
  ])('refuses %s', async (_name, spec, message) => {
    const res = await create('imagebuilds', 'ImageBuild', spec);
    expect(res.status, res.message).toBe(422);
    expect(res.message, res.message).toMatch(message);
  });
});
