#!/usr/bin/env python3
"""net-harness.py [--tap IFNAME] [--big N] PORT COUNT OUT CMD...: feed the network test guest
(tests/guest/guest.sh, configuration "network") from outside, as a host on
its network would, and copy what CMD prints to OUT.

CMD runs QEMU with -netdev socket,udp=...,localaddr=127.0.0.1:PORT: each
UDP datagram sent to PORT reaches the guest's NIC as one Ethernet frame.
Once the guest says "net: waiting", COUNT broadcast frames go there, one
every 20 ms (how far apart they land is the host's business; the guest
prints it, and a replay must print the same).  With --tap, CMD runs QEMU
with -netdev tap,ifname=IFNAME (QEMU makes the device; root): the frames
go into IFNAME from the host's side instead (a raw packet socket), after
its IPv6 is turned off (so that the host's kernel sends nothing of its own)
and its link set up; PORT is unused.  With --big, the last frame is N bytes
long (a jumbo frame).  Exits with CMD's status, or 124 when
nothing expected comes for 60 s.  Standard library only."""
import os
import select
import socket
import subprocess
import sys
import time

TIMEOUT = 60


def frame(i, size=0):
    payload = ("bhrr test frame %d " % i).encode() * 4
    if size:
        payload = (payload * (size // len(payload) + 1))[:size - 14]
    return b"\xff" * 6 + b"\x52\x54\x00\xbb\x00\x01" + b"\x88\xb5" + payload


def tap_socket(ifname):
    """A raw socket sending into tap IFNAME from the host, once it is quiet and up."""
    with open("/proc/sys/net/ipv6/conf/%s/disable_ipv6" % ifname, "w") as f:
        f.write("1\n")
    subprocess.run(["ip", "link", "set", ifname, "up"], check=True)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((ifname, 0))
    return s


def main():
    args = sys.argv[1:]
    tap, big = None, 0
    while args[0].startswith("--"):
        if args[0] == "--tap":
            tap = args[1]
        elif args[0] == "--big":
            big = int(args[1])
        else:
            sys.exit("net-harness: unknown option %s" % args[0])
        args = args[2:]
    port, count, out_path, cmd = int(args[0]), int(args[1]), args[2], args[3:]
    out = open(out_path, "wb")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, bufsize=0)
    buf = b""
    deadline = time.monotonic() + TIMEOUT
    sent = 0
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    while True:
        if time.monotonic() > deadline:
            sys.stderr.write("net-harness: timed out (sent %d)\n" % sent)
            proc.kill()
            proc.wait()
            sys.exit(124)
        r, _, _ = select.select([proc.stdout], [], [], 0.02)
        if r:
            data = os.read(proc.stdout.fileno(), 65536)
            if not data:
                break
            out.write(data)
            out.flush()
            buf += data
        if b"net: waiting" in buf and sent < count:
            f = frame(sent, big if sent == count - 1 else 0)
            if tap is None:
                sock.sendto(f, ("127.0.0.1", port))
            else:
                if sent == 0:
                    sock = tap_socket(tap)
                sock.send(f)
            sent += 1
    sys.exit(proc.wait())


if __name__ == "__main__":
    main()
