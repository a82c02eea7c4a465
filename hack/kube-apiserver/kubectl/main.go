// Command kubectl is upstream kubectl at the same pinned release as the API
// server, for poking at the test control plane by hand
// (`make kubectl`, then `$(KUBECTL) --kubeconfig ...`).
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
	}
}
