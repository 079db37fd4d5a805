#!/usr/bin/env python3
"""ci-harness.py [--live-replay] HTTP_PORT FWD_PORT QMP_SOCK AGENT_SOCK OUT CMD...:
drive the Linux test guest (tests/guest/linux/init with bhrr.shell=1
bhrr.net=1) as a CI job does, and copy everything CMD prints to OUT.

CMD runs QEMU with the guest's shell on the serial console (stdio), a
virtio NIC on user networking with hostfwd=tcp:127.0.0.1:FWD_PORT-:22, a
virtio-rng fed by /dev/urandom, QMP on QMP_SOCK (wait=off), and a
virtio-serial port named like a guest agent's channel on a socket chardev
at AGENT_SOCK (server, wait=off).  The
harness serves a payload over HTTP on 127.0.0.1:HTTP_PORT, then, each step
waiting for the guest's answer to the one before (never for a delay):
  - at the prompt: fetches the payload in the guest (wget from 10.0.2.2);
  - QMP stop, then cont (the VM stopped in the middle of the job);
  - connects to the agent channel, sends a line, and has the guest read it
    from its port (the line waits in the socket until the guest opens it);
  - starts a listener on the guest's port 22, connects to it through
    hostfwd from the host, and exchanges a line each way;
  - reads /dev/hwrng and prints the kernel's clock;
  - types "poweroff -f" and waits for CMD's end.
With --live-replay, CMD is a replay: no HTTP server runs, the connection to
FWD_PORT is only attempted, the QMP commands are expected to be refused,
the agent channel gets another line, and the harness types the same lines
at the same prompts.  A replay does not wait for its harness: when CMD is
gone before the harness gets to a step, it says so on stderr ("ci-harness:
CMD gone before ...") and goes on.
Exits with CMD's status, or 124 when CMD prints nothing expected for 300 s.
Standard library only."""
import http.server
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time

TIMEOUT = 300
PROMPT = b"guest# "
PAYLOAD = b"".join(b"bhrr payload line %04d\n" % i for i in range(2000))


class Quiet(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD)

    def log_message(self, *args):
        pass


class Harness:
    def __init__(self, live, http_port, fwd_port, qmp_sock, agent_sock, out_path, cmd):
        self.live = live
        self.agent_sock = agent_sock
        self.agent = None
        self.http_port = http_port
        self.fwd_port = fwd_port
        self.qmp_sock = qmp_sock
        self.out = open(out_path, "wb")
        self.buf = b""
        self.seen = 0
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     bufsize=0)

    def fail(self, why):
        sys.stderr.write("ci-harness: %s\n" % why)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        sys.exit(124)

    def pump(self, timeout):
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

    def expect(self, text):
        """Wait for @text after what was seen so far."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            k = self.buf.find(text, self.seen)
            if k >= 0:
                self.seen = k + len(text)
                return
            if time.monotonic() > deadline:
                self.fail("no %r in %d s" % (text, TIMEOUT))
            if not self.pump(0.2):
                self.fail("CMD ended before %r" % text)

    def type(self, line):
        try:
            self.proc.stdin.write(line)
            self.proc.stdin.flush()
        except BrokenPipeError:
            if not self.live:
                raise
            # a replay does not wait for its harness: it may be over already
            sys.stderr.write("ci-harness: CMD gone before its input\n")

    def step(self, line, answer):
        self.expect(PROMPT)
        self.type(line)
        self.expect(answer)

    def qmp(self, names):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        replies = []

        def reply():
            while True:
                line = f.readline()
                if not line:
                    raise ConnectionError("QMP closed")
                msg = json.loads(line)
                if "event" not in msg:
                    return msg

        try:
            s.connect(self.qmp_sock)
            f = s.makefile("rwb", buffering=0)
            reply()  # greeting
            for name in ["qmp_capabilities"] + names:
                f.write(json.dumps({"execute": name}).encode() + b"\n")
                replies.append((name, reply()))
        except OSError:
            if not self.live:
                raise
            sys.stderr.write("ci-harness: CMD gone before its QMP commands\n")
        s.close()
        for name, msg in replies[1:]:
            if self.live and name in ("stop", "cont") and "error" not in msg:
                self.fail("the replay ran a live %s: %r" % (name, msg))
            if not self.live and "error" in msg:
                self.fail("%s: %r" % (name, msg))

    def exchange(self):
        """Connect to the guest's port 22 through hostfwd, send a line, read one."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                c = socket.create_connection(("127.0.0.1", self.fwd_port), timeout=10)
            except OSError:
                if self.live:
                    return
                time.sleep(0.1)
                continue
            try:
                c.sendall(b"from-host\n")
                got = c.recv(100)
            except OSError:
                got = b""
            c.close()
            if got.startswith(b"from-guest") or self.live:
                return
            time.sleep(0.1)
        self.fail("no answer through hostfwd")

    def run(self):
        self.expect(b"linux-guest: shell")
        self.step(b"wget -q -O - http://10.0.2.2:%d/payload | md5sum\n" % self.http_port, b"  -\r\n")
        self.qmp(["query-status", "stop", "query-status", "cont"])
        self.agent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.agent.connect(self.agent_sock)
            self.agent.sendall(b"live-agent-line\n" if self.live else b"agent-ping 42\n")
        except OSError:
            if not self.live:
                raise
            sys.stderr.write("ci-harness: CMD gone before its channel line\n")
        # a query answered after the line was sent: QEMU's main loop has
        # read the line by then (a replay says it ignored it)
        self.qmp(["query-status"])
        self.step(b"head -n 1 /dev/vport*p1\n", b"agent-ping 42\r\n")
        self.step(b"(echo from-guest | nc -l -p 22 > /tmp/got; echo nc-done) &\n", PROMPT)
        self.type(b"echo listening\n")
        self.expect(b"listening\r\n")
        self.exchange()
        self.expect(b"nc-done")  # a background job's line: no prompt follows it
        self.type(b"cat /tmp/got; head -c 16 /dev/hwrng | md5sum\n")
        self.expect(b"  -\r\n")
        self.step(b"head -n 3 /proc/timer_list | tail -n 1\n", b"nsecs")
        self.expect(PROMPT)
        self.type(b"poweroff -f\n")
        deadline = time.monotonic() + TIMEOUT
        while self.pump(0.5):
            if time.monotonic() > deadline:
                self.fail("CMD did not end")
        return self.proc.wait()


def main():
    args = sys.argv[1:]
    live = args[0] == "--live-replay"
    if live:
        args = args[1:]
    http_port, fwd_port, qmp_sock, agent_sock, out_path, cmd = (int(args[0]), int(args[1]),
                                                                args[2], args[3], args[4],
                                                                args[5:])
    if not live:
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", http_port), Quiet)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    sys.exit(Harness(live, http_port, fwd_port, qmp_sock, agent_sock, out_path, cmd).run())


if __name__ == "__main__":
    main()
