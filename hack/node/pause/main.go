// Command pause is the local node's sandbox ("infra") container: it holds the
// Pod's namespaces, reaps orphaned children (it is PID 1 when the Pod shares
// its PID namespace) and exits on SIGINT/SIGTERM. Stevedore builds its own so
// the node never pulls a sandbox image from outside the machine.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
