/**
 * Configuration files of the local node (containerd, CNI, kubelet, kubeconfigs), as plain text
 * generated from one set of paths. Every path is under the node's own directory; nothing here
 * names a system directory except the cgroup root (a /sys/fs/cgroup subtree of our own).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface NodePaths {
  dir: string;
  containerdRoot: string;
  containerdState: string;
  containerdSocket: string;
  certsDir: string;
  cniConfDir: string;
  cniDataDir: string;
  kubeletRoot: string;
  kubeletConfig: string;
  podLogs: string;
  volumePlugins: string;
  /** Where this kubelet reads Localhost seccomp profiles (`<root-dir>/seccomp`). */
  seccompDir: string;
}

export function nodePaths(dir: string): NodePaths {
  return {
    dir,
    containerdRoot: join(dir, 'containerd', 'root'),
    containerdState: join(dir, 'containerd', 'state'),
    containerdSocket: join(dir, 'containerd', 'containerd.sock'),
    certsDir: join(dir, 'etc', 'containerd', 'certs.d'),
    cniConfDir: join(dir, 'etc', 'cni', 'net.d'),
    cniDataDir: join(dir, 'cni'),
    kubeletRoot: join(dir, 'kubelet'),
    kubeletConfig: join(dir, 'etc', 'kubelet.yaml'),
    podLogs: join(dir, 'pod-logs'),
    volumePlugins: join(dir, 'volume-plugins'),
    seccompDir: join(dir, 'kubelet', 'seccomp'),
  };
}

const q = (s: string) => JSON.stringify(s); // TOML basic strings take JSON's escapes

export function containerdConfig(p: NodePaths, o: { runc: string; cniBinDir: string; sandboxImage: string }): string {
  return `# containerd ${'2.x'} for the local node (written by hack/lib/harness/node.ts)
version = 3
root = ${q(p.containerdRoot)}
state = ${q(p.containerdState)}

[grpc]
  address = ${q(p.containerdSocket)}
[ttrpc]
  address = ${q(`${p.containerdSocket}.ttrpc`)}
[debug]
  level = "info"

[plugins]
  [plugins.'io.containerd.internal.v1.opt']
    path = ${q(join(p.dir, 'containerd', 'opt'))}
  [plugins.'io.containerd.nri.v1.nri']
    disable = true
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = "overlayfs"
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = ${q(o.sandboxImage)}
    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = ${q(p.certsDir)}
  [plugins.'io.containerd.cri.v1.runtime']
    # root here lacks CAP_SYS_RESOURCE: never lower a process's oom_score_adj below ours.
    restrict_oom_score_adj = true
    enable_cdi = false
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = "runc"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = ${q(o.runc)}
          Root = ${q(join(p.dir, 'containerd', 'runc'))}
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = [${q(o.cniBinDir)}]
      conf_dir = ${q(p.cniConfDir)}
      max_conf_num = 1
`;
}

/** Plain HTTP for our own registry (it listens on the bridge's address, never beyond this machine). */
export function registryHostsToml(registryHost: string): string {
  return `server = ${q(`http://${registryHost}`)}

[host.${q(`http://${registryHost}`)}]
  capabilities = ["pull", "resolve"]
  skip_verify = true
`;
}

/**
 * The Pod network: a bridge of ours with the gateway address on the host side (so the kubelet's
 * probes and the host reach Pods), no default route in the Pods and no masquerade: a Pod can
 * reach this machine's bridge address and nothing else.
 */
export function cniConflist(p: NodePaths, o: { bridge: string; subnet: string; gateway: string }): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: 'stevedore-node',
      plugins: [
        {
          type: 'bridge',
          bridge: o.bridge,
          isGateway: true,
          isDefaultGateway: false,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            dataDir: p.cniDataDir,
            ranges: [[{ subnet: o.subnet, gateway: o.gateway }]],
            routes: [],
          },
        },
      ],
    },
    null,
    2,
  );
}

export function kubeletConfig(p: NodePaths, o: { caFile: string; cgroupRoot: string; port: number; healthzPort: number }): string {
  return JSON.stringify(
    {
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      containerRuntimeEndpoint: `unix://${p.containerdSocket}`,
      imageServiceEndpoint: `unix://${p.containerdSocket}`,
      // Hybrid cgroup v1+v2 host without systemd as the manager: cgroupfs under a root of our own.
      cgroupDriver: 'cgroupfs',
      cgroupRoot: o.cgroupRoot,
      failCgroupV1: false,
      failSwapOn: false,
      address: '127.0.0.1',
      port: o.port,
      healthzBindAddress: '127.0.0.1',
      healthzPort: o.healthzPort,
      readOnlyPort: 0,
      podLogsDir: p.podLogs,
      volumePluginDir: p.volumePlugins,
      authentication: { x509: { clientCAFile: o.caFile }, anonymous: { enabled: false }, webhook: { enabled: false } },
      authorization: { mode: 'AlwaysAllow' },
      // A shared test machine: evict only when nearly nothing is left, never GC images mid-suite.
      evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      serializeImagePulls: false,
      // No KUBE-* iptables chains on this machine: nothing here needs them (no kube-proxy).
      makeIPTablesUtilChains: false,
      featureGates: { UserNamespacesSupport: true },
      // Status every few seconds, so tests see Pods and the node promptly.
      nodeStatusUpdateFrequency: '4s',
      syncFrequency: '10s',
    },
    null,
    2,
  );
}

export interface KubeconfigUser {
  name: string;
  certFile: string;
  keyFile: string;
}

export function kubeconfig(server: string, caFile: string, user: KubeconfigUser): string {
  const b64 = (f: string) => readFileSync(f).toString('base64');
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'stevedore-node', cluster: { server, 'certificate-authority-data': b64(caFile) } }],
      users: [{ name: user.name, user: { 'client-certificate-data': b64(user.certFile), 'client-key-data': b64(user.keyFile) } }],
      contexts: [{ name: 'stevedore-node', context: { cluster: 'stevedore-node', user: user.name, namespace: 'default' } }],
      'current-context': 'stevedore-node',
    },
    null,
    2,
  );
}
