"""Time `make demo` on a pseudo-terminal: seconds until its instructions ("Press Ctrl-C"),
then Ctrl-C. Usage: demo_timer.py CHROOT_OR_- CMD. With a chroot, CMD runs in it in
/root/sfbridge; with -, in the current directory. Prints "instructions after N.N s" and the
exit status (bench/demo-fresh.sh)."""
import os
import pty
import select
import sys
import time

root, cmd = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM": "xterm",
           "HOME": "/root"}
    if root == "-":
        os.execvpe("bash", ["bash", "-c", "exec " + cmd], {**os.environ, "TERM": "xterm"})
    os.execve("/usr/sbin/chroot", ["chroot", root, "bash", "-c", "cd /root/sfbridge && exec " + cmd], env)
raw, t0, shown, sent = b"", time.monotonic(), None, False
while time.monotonic() - t0 < 900:
    r, _, _ = select.select([fd], [], [], 0.05)
    if r:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        raw += chunk
    if shown is None and b"Press Ctrl-C" in raw:
        shown = time.monotonic() - t0
    if shown is not None and not sent and b"status at" in raw:
        os.write(fd, b"\x03")
        sent = True
_, status = os.waitpid(pid, 0)
print(f"instructions after {shown:.1f} s" if shown else "no instructions", "; exit",
      os.waitstatus_to_exitcode(status))
sys.exit(0 if shown else 1)
