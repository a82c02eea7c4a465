// Command kubelet is the upstream node agent, built from the same pinned
// k8s.io/kubernetes release as hack/kube-apiserver so the local node
// (hack/node, test/harness/node.ts) and its API server stay at one version.
package main

import (
	"context"
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	os.Exit(cli.Run(app.NewKubeletCommand(context.Background())))
}
