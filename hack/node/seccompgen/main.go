// Command seccompgen writes the seccomp profile Stevedore's build Pods run
// under (a kubelet "Localhost" profile). It starts from containerd's own
// default profile, computed as if the container held CAP_SYS_ADMIN and
// CAP_SYS_CHROOT (the Pod holds neither: the profile only stops filtering
// the calls that a user namespace makes safe), then:
//   - allows pivot_root, which runc needs to enter a RUN step's root;
//   - answers keyctl, add_key and request_key with ENOSYS, so runc skips the
//     session keyring instead of failing (the default profile says EPERM).
//
// The capabilities the kernel checks stay those of the Pod (none); the
// profile only decides which system calls reach those checks. Usage:
//
//	seccompgen > charts/stevedore/files/seccomp/stevedore-builder.json
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func main() {
	caps := []string{"CAP_SYS_ADMIN", "CAP_SYS_CHROOT"}
	spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
	profile := seccomp.DefaultProfile(spec)
	nosys := uint(38) // ENOSYS on Linux, every architecture the profile lists
	profile.Syscalls = append(profile.Syscalls,
		specs.LinuxSyscall{Names: []string{"pivot_root"}, Action: specs.ActAllow},
		specs.LinuxSyscall{Names: []string{"add_key", "keyctl", "request_key"}, Action: specs.ActErrno, ErrnoRet: &nosys},
	)
	out, err := json.MarshalIndent(profile, "", "  ")
	if err != nil {
		fmt.Fprintln(os.Stderr, "seccompgen:", err)
		os.Exit(1)
	}
	fmt.Println(string(out))
}
