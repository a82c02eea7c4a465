// `make demo` helper: the ImageMirror part, through the API (no kubectl needed).
//   node --import ./hack/lib/ts-resolve.ts hack/demo/mirror.ts apply KUBECONFIG SOURCE DESTINATION
//     server-side applies an ImageMirror shaped like examples/imagemirror.yaml, but pointing at the
//     demo's insecure loopback registry (tags [1.0], every minute), and prints it as YAML
//   ... mirror.ts wait KUBECONFIG SECONDS   waits for Ready=True; exits 1 with the status if not
//   ... mirror.ts get KUBECONFIG            prints `kubectl get stevedore -A`-like columns (Table API)
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { sleep } from '../../src/util/sleep.js';
import { api } from './api.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NAMESPACE = 'default';
const NAME = 'busybox';
const PATH = `/apis/stevedore.dev/v1alpha1/namespaces/${NAMESPACE}/imagemirrors/${NAME}`;

const [cmd, kubeconfig, ...rest] = process.argv.slice(2);
if (!cmd || !kubeconfig) {
  console.error('usage: mirror.ts apply|wait|get KUBECONFIG ...');
  process.exit(2);
}
const call = api(kubeconfig);

if (cmd === 'apply') {
  const [source, destination] = rest;
  const obj = parse(readFileSync(join(REPO, 'examples', 'imagemirror.yaml'), 'utf8'));
  obj.metadata = { name: NAME, namespace: NAMESPACE };
  obj.spec = {
    source: { registry: { repository: source, insecure: true } },
    destination: { registry: { repository: destination, insecure: true } },
    tags: { list: ['1.0'] },
    schedule: { interval: '1m' },
    prune: true,
  };
  const res = await call('PATCH', `${PATH}?fieldManager=stevedore-demo&force=true`, { 'content-type': 'application/apply-patch+yaml' }, JSON.stringify(obj));
  if (res.status >= 300) {
    console.error(`apply failed (${res.status}): ${res.json?.message}`);
    process.exit(1);
  }
  console.log(stringify(obj).trimEnd().replace(/^/gm, '    '));
} else if (cmd === 'wait') {
  const deadline = Date.now() + Number(rest[0] ?? 60) * 1000;
  let last: any;
  for (;;) {
    const res = await call('GET', PATH);
    last = res.json;
    const ready = (last?.status?.conditions ?? []).find((c: any) => c.type === 'Ready');
    if (ready?.status === 'True' && ready.observedGeneration === last.metadata?.generation) break;
    if (Date.now() > deadline) {
      console.error(`ImageMirror ${NAMESPACE}/${NAME} not Ready in time; status:`);
      console.error(stringify(last?.status ?? {}).replace(/^/gm, '    '));
      process.exit(1);
    }
    await sleep(250);
  }
  const ready = last.status.conditions.find((c: any) => c.type === 'Ready');
  console.log(`    Ready=True reason=${ready.reason}: ${ready.message ?? ''}`);
} else if (cmd === 'get') {
  const res = await call('GET', '/apis/stevedore.dev/v1alpha1/imagemirrors', {
    accept: 'application/json;as=Table;g=meta.k8s.io;v=v1,application/json',
  });
  if (res.status >= 300) {
    console.error(`list failed (${res.status}): ${res.json?.message}`);
    process.exit(1);
  }
  const cols = (res.json.columnDefinitions as { name: string; priority?: number }[])
    .map((c, i) => ({ name: c.name.toUpperCase(), i, priority: c.priority ?? 0 }))
    .filter((c) => c.priority === 0);
  const rows: string[][] = [['NAMESPACE', ...cols.map((c) => c.name)]];
  for (const r of res.json.rows as { cells: unknown[]; object: { metadata: { namespace: string } } }[]) {
    rows.push([r.object.metadata.namespace, ...cols.map((c) => String(r.cells[c.i] ?? '<none>'))]);
  }
  const width = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    console.log(
      r
        .map((cell, i) => cell.padEnd(width[i]!))
        .join('   ')
        .trimEnd(),
    );
  // The status in full, as `kubectl get -o yaml` would show it.
  const obj = await call('GET', PATH);
  console.log(stringify({ status: obj.json.status }).trimEnd());
} else {
  console.error(`unknown command ${cmd}`);
  process.exit(2);
}
