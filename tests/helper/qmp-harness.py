#!/usr/bin/env python3
"""qmp-harness.py [--live-replay] [--reset-running] [--keys] [--powerdown] SOCK FIFO OUT CMD...: drive the monitor
test guest (tests/guest/guest.sh, configuration "monitor") over QMP as a CI
harness does, and copy what CMD prints to OUT.

CMD is bhrr record (or replay) of QEMU started with -S and
-qmp unix:SOCK,server=on,wait=off; the guest's console reads FIFO.  Steps,
each one forced by what the guest printed, never by a delay:
  qmp_capabilities, query-status (prelaunch), cont;
  at "con: waiting" (the guest polls COM1, nothing else can move it on):
  stop, query-status (paused), system_reset, cont (with --reset-running:
  system_reset alone, the guest running);
  at the second "con: waiting" (the guest booted again): 24 bytes into FIFO.
With --keys (the keyboard configuration): cont, then at "kbd: waiting"
send-key a, then human-monitor-command "sendkey b".  With --powerdown (the
powerdown configuration): cont, then at "pwr: waiting" system_powerdown.
Then CMD runs to its end.  With --live-replay, CMD is a replay whose QMP
socket waits for this client (wait=on): right after connecting it sends
query-status, cont, stop, system_reset and cont, and each one but the query
must be refused (a QMP error), then it waits for CMD's end; it neither
waits for the guest nor types.
Exits with CMD's status, or 124 when nothing expected comes for 60 s.
Standard library only."""
import json
import os
import select
import socket
import subprocess
import sys
import time

TIMEOUT = 60


class Harness:
    def __init__(self, live_replay, reset_running, keys, sock_path, fifo, out_path, cmd):
        self.live_replay = live_replay
        self.reset_running = reset_running
        self.keys = keys
        self.sock_path = sock_path
        self.fifo = fifo
        self.out = open(out_path, "wb")
        self.buf = b""
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, bufsize=0)
        self.qmp = None
        self.qbuf = b""

    def fail(self, why):
        sys.stderr.write("qmp-harness: %s\n" % why)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        sys.exit(124)

    def pump(self, timeout):
        """Copy what CMD printed so far; False at its end."""
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            return True
        data = os.read(self.proc.stdout.fileno(), 65536)
        if not data:
            return False
        self.out.write(data)
        self.out.flush()
        self.buf += data
        return True

    def wait_output(self, text, count):
        deadline = time.monotonic() + TIMEOUT
        while self.buf.count(text) < count:
            if time.monotonic() > deadline:
                self.fail("no %r (%d) in %d s" % (text, count, TIMEOUT))
            if not self.pump(0.2):
                self.fail("CMD ended before %r (%d)" % (text, count))

    def connect(self):
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.sock_path)
                self.qmp = s
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    self.fail("no QMP socket at %s" % self.sock_path)
                self.pump(0.1)
        self.reply()  # the greeting
        self.command("qmp_capabilities")

    def reply(self):
        deadline = time.monotonic() + TIMEOUT
        while True:
            while b"\n" in self.qbuf:
                line, self.qbuf = self.qbuf.split(b"\n", 1)
                msg = json.loads(line)
                if "event" not in msg:
                    return msg
            if time.monotonic() > deadline:
                self.fail("no QMP reply")
            r, _, _ = select.select([self.qmp, self.proc.stdout], [], [], 0.2)
            if self.proc.stdout in r:
                self.pump(0)
            if self.qmp in r:
                data = self.qmp.recv(65536)
                if not data:
                    self.fail("QMP closed")
                self.qbuf += data

    def command(self, name, changes=False, arguments=None):
        req = {"execute": name}
        if arguments is not None:
            req["arguments"] = arguments
        self.qmp.sendall(json.dumps(req).encode() + b"\n")
        msg = self.reply()
        if self.live_replay and changes:
            if "error" not in msg:
                self.fail("replay ran live %s: %r" % (name, msg))
        elif "error" in msg:
            self.fail("%s: %r" % (name, msg))
        return msg.get("return")

    def status(self):
        return self.command("query-status")["status"]

    def run_live_replay(self):
        self.connect()
        self.status()
        for name in ("cont", "stop", "system_reset", "cont"):
            self.command(name, True)
        return self.finish()

    def finish(self):
        deadline = time.monotonic() + TIMEOUT
        while self.pump(0.5):
            if time.monotonic() > deadline:
                self.fail("CMD did not end")
        return self.proc.wait()

    def run(self):
        if self.live_replay:
            return self.run_live_replay()
        self.connect()
        st = self.status()
        if st != "prelaunch":
            self.fail("status %s before cont" % st)
        self.command("cont", True)
        if self.powerdown:
            self.wait_output(b"pwr: waiting", 1)
            self.command("system_powerdown", True)
            return self.finish()
        if self.keys:
            self.wait_output(b"kbd: waiting", 1)
            self.command("send-key", True, {"keys": [{"type": "qcode", "data": "a"}]})
            self.command("human-monitor-command", True, {"command-line": "sendkey b"})
            return self.finish()
        self.wait_output(b"con: waiting", 1)
        if self.reset_running:
            self.command("system_reset", True)
        else:
            self.command("stop", True)
            st = self.status()
            if st != "paused":
                self.fail("status %s after stop" % st)
            self.command("system_reset", True)
            self.command("cont", True)
        self.wait_output(b"con: waiting", 2)
        with open(self.fifo, "wb") as f:
            f.write(b"typed after a reset: 24!")
        return self.finish()


def main():
    args = sys.argv[1:]
    live = reset_running = keys = powerdown = False
    while args and args[0].startswith("--"):
        if args[0] == "--live-replay":
            live = True
        elif args[0] == "--reset-running":
            reset_running = True
        elif args[0] == "--keys":
            keys = True
        elif args[0] == "--powerdown":
            powerdown = True
        else:
            sys.exit("qmp-harness: unknown option %s" % args[0])
        args = args[1:]
    sock_path, fifo, out_path, cmd = args[0], args[1], args[2], args[3:]
    h = Harness(live, reset_running, keys, sock_path, fifo, out_path, cmd)
    h.powerdown = powerdown
    sys.exit(h.run())


if __name__ == "__main__":
    main()
