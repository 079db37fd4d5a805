#!/usr/bin/env python3
"""egd-feeder.py SOCK: connect to QEMU's socket chardev at SOCK (retrying
until it exists) and answer its rng-egd backend as an EGD daemon does:
each request "0x02 N" gets N random bytes.  Ends when QEMU closes the
socket.  Standard library only (tests/shell/76-entropy.bats)."""
import os
import socket
import sys
import time


def main():
    path = sys.argv[1]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.monotonic() + 60
    while True:
        try:
            s.connect(path)
            break
        except OSError:
            if time.monotonic() > deadline:
                sys.exit("egd-feeder: cannot connect to %s" % path)
            time.sleep(0.05)
    buf = b""
    while True:
        data = s.recv(4096)
        if not data:
            return
        buf += data
        while len(buf) >= 2:
            if buf[0] != 0x02:
                sys.exit("egd-feeder: unknown EGD request %#x" % buf[0])
            s.sendall(os.urandom(buf[1]))
            buf = buf[2:]


if __name__ == "__main__":
    main()
