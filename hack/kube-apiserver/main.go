// Command kube-apiserver is the upstream Kubernetes API server, built from the
// pinned k8s.io/kubernetes release in go.mod. Stevedore's tests start it
// against a local etcd (see test/harness/controlplane.ts), the way
// controller-runtime's envtest does.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	command := app.NewAPIServerCommand()
	code := cli.Run(command)
	os.Exit(code)
}
