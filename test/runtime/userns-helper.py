# Runs a command as root inside a new user (and mount) namespace whose ids 0..SIZE-1 are host ids
# BASE..BASE+SIZE-1: what `unshare --user --map-root-user --map-auto` (or `buildah unshare`) gives a
# non-root user with a subuid range, made here by root without /etc/subuid entries.
# usage: userns-helper.py BASE SIZE COMMAND [ARGS...]
import ctypes
import os
import sys

libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWUSER, CLONE_NEWNS = 0x10000000, 0x00020000
MS_REC, MS_PRIVATE = 0x4000, 0x40000

base, size = int(sys.argv[1]), int(sys.argv[2])
ready_r, ready_w = os.pipe()
go_r, go_w = os.pipe()
pid = os.fork()
if pid == 0:
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    os.write(ready_w, b'x')
    os.read(go_r, 1)
    # Still holding every capability of the new namespace (no exec yet): become its root.
    os.setgroups([])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    if libc.mount(b'none', b'/', None, MS_REC | MS_PRIVATE, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    os.execvp(sys.argv[3], sys.argv[3:])
os.read(ready_r, 1)
for name in ('uid_map', 'gid_map'):
    with open(f'/proc/{pid}/{name}', 'w') as f:
        f.write(f'0 {base} {size}\n')
os.write(go_w, b'x')
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
