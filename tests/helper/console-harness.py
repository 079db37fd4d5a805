#!/usr/bin/env python3
"""console-harness.py OUT CMD...: drive a shell on CMD's stdio as an
expect-style CI harness does, and copy everything CMD prints to OUT.

Waits for the Linux test guest's "linux-guest: shell" line and its prompt,
types a few commands (one of them prints the kernel's clock, which depends
on when the keystrokes arrived), waiting for each one's answer, then types
"poweroff -f" and waits for CMD to exit.  Exits with CMD's status, or 124
when CMD prints nothing expected for 240 s.  Standard library only."""
import os
import select
import signal
import subprocess
import sys
import time

PROMPT = b"guest# "
STEPS = [
    (b"linux-guest: shell", None),
    (PROMPT, b"echo typed $((6 * 7))\n"),
    (b"typed 42", None),
    (PROMPT, b"head -n 3 /proc/timer_list | tail -n 1\n"),
    (b"nsecs", None),
    (PROMPT, b"poweroff -f\n"),
]


def stop(proc):
    """SIGTERM first: bhrr passes it on to QEMU, which SIGKILL would orphan."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main():
    out_path, cmd = sys.argv[1], sys.argv[2:]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    # an outer timeout's SIGTERM reaches QEMU too
    signal.signal(signal.SIGTERM, lambda *_: (stop(proc), sys.exit(124)))
    seen = b""
    pos = 0  # where the next pattern is searched from
    with open(out_path, "wb") as out:

        def read_until(pattern, deadline):
            nonlocal seen, pos
            while True:
                at = seen.find(pattern, pos)
                if at >= 0:
                    pos = at + len(pattern)
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                ready, _, _ = select.select([proc.stdout], [], [], left)
                if not ready:
                    continue
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    return False
                out.write(chunk)
                seen += chunk

        for pattern, send in STEPS:
            if not read_until(pattern, time.monotonic() + 240):
                sys.stderr.write("console-harness: never saw %r\n" % pattern)
                stop(proc)
                return 124
            if send:
                proc.stdin.write(send)
                proc.stdin.flush()
        # the rest, until QEMU exits (poweroff was typed)
        deadline = time.monotonic() + 240
        while True:
            left = deadline - time.monotonic()
            ready = left > 0 and select.select([proc.stdout], [], [], left)[0]
            if not ready:
                sys.stderr.write("console-harness: still running 240 s after poweroff\n")
                stop(proc)
                return 124
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            out.write(chunk)
    return proc.wait()


if __name__ == "__main__":
    sys.exit(main())
