# gdb-scenario.py - the debugging scenarios of tests/shell/85-debug.bats, run
# inside gdb (gdb -batch -x gdb-scenario.py) against `bhrr replay --gdb`.
# The scenario is $SCENARIO; the endpoint is $TARGET.  Each prints RESULT
# lines that the test asserts on; every comparison is of exact guest state
# (registers, memory, icounts), never of time.
import os

import gdb


def run(cmd):
    return gdb.execute(cmd, to_string=True)


def regs():
    """Every general register and the flags, as one string."""
    out = run("maint packet g")
    return out.split("received: ")[-1].strip()


def when():
    """The icount from monitor bhrr when."""
    out = run("monitor bhrr when")
    return int(out.split()[1].rstrip(";"))


def pc():
    return int(gdb.parse_and_eval("$pc")) & 0xFFFFFFFFFFFFFFFF


def cmds_memory():
    """The guest's command table: what the failing check reads (coin_side)."""
    addr = int(gdb.parse_and_eval("(unsigned long)&cmds"))
    size = int(gdb.parse_and_eval("sizeof(cmds)"))
    return bytes(gdb.selected_inferior().read_memory(addr, size))


def stopped_at(fn):
    return gdb.selected_frame().name() == fn


def scenario_revcont():
    """continue to leave() through cmd_complete hits, then reverse-continue
    to the last cmd_complete hit: the same registers and command table."""
    run("break leave")
    run("break cmd_complete")
    last = None
    hits = 0
    while True:
        run("continue")
        if stopped_at("leave"):
            break
        hits += 1
        last = (regs(), cmds_memory(), when(), pc())
    leave_ic = when()
    run("reverse-continue")
    now = (regs(), cmds_memory(), when(), pc())
    print("RESULT revcont hits=%d at=%s leave_icount=%d hit_icount=%d back_icount=%d "
          "regs_same=%d memory_same=%d" % (
              hits, gdb.selected_frame().name(), leave_ic, last[2], now[2],
              int(now[0] == last[0]), int(now[1] == last[1])))


def scenario_stepi():
    """stepi N times recording the registers, then reverse-stepi N times:
    the same states in reverse order."""
    n = int(os.environ.get("STEPS", "200"))
    fw = [(when(), regs())]
    for _ in range(n):
        run("stepi")
        fw.append((when(), regs()))
    bw = [(when(), regs())]
    for _ in range(n):
        run("reverse-stepi")
        bw.append((when(), regs()))
    bw.reverse()
    diff = sum(1 for a, b in zip(fw, bw) if a != b)
    print("RESULT stepi n=%d from=%d to=%d differ=%d distinct=%d" % (
        n, fw[0][0], fw[-1][0], diff, len(set(r for _, r in fw))))


def scenario_watch():
    """A watchpoint on the last command's latency (what the failing check
    reads last), forward to leave(), then reverse-continue: the last write."""
    run("watch cmds[%s].latency" % os.environ.get("WATCH_CMD", "31"))
    run("break leave")
    writes = []
    while True:
        run("continue")
        if stopped_at("leave"):
            break
        writes.append((when(), pc()))
    run("reverse-continue")
    back = (when(), pc())
    where = gdb.selected_frame().name()
    # one instruction on: the write, and the forward run's stop after it
    run("stepi")
    on = (when(), pc())
    print("RESULT watch writes=%d last_icount=%d last_pc=%#x back_icount=%d back_pc=%#x in=%s "
          "stepped_icount=%d stepped_pc=%#x" % (
              len(writes), writes[-1][0] if writes else -1, writes[-1][1] if writes else 0,
              back[0], back[1], where, on[0], on[1]))


def scenario_pcs():
    """From kmain()'s first instruction, stepi N times and reverse-stepi N
    times: the PCs of both walks (compared with QEMU's native reverse
    debugging on the same guest, whose start is not host-timed)."""
    n = int(os.environ.get("STEPS", "50"))
    run("break *kmain")
    run("continue")
    run("delete")
    fw = [pc()]
    for _ in range(n):
        run("stepi")
        fw.append(pc())
    bw = [pc()]
    for _ in range(n):
        run("reverse-stepi")
        bw.append(pc())
    print("RESULT pcs n=%d fw=%s bw=%s" % (n, ",".join("%x" % p for p in fw),
                                         ",".join("%x" % p for p in bw)))


def scenario_timing():
    """make bench: the cost of one reverse-stepi and one reverse-continue
    (to the last cmd_complete hit) at icount $AT, bhrr or native."""
    import time
    at = int(os.environ["AT"])
    if os.environ.get("NATIVE"):
        run("monitor replay_break %d" % at)
        run("continue")
    else:
        run("monitor bhrr goto %d" % at)
    run("stepi")
    t0 = time.time()
    run("reverse-stepi")
    t1 = time.time()
    run("break cmd_complete")
    t2 = time.time()
    run("reverse-continue")
    t3 = time.time()
    print("RESULT timing at=%d reverse_stepi=%.3f reverse_continue=%.3f in=%s" % (
        at, t1 - t0, t3 - t2, gdb.selected_frame().name()))


def scenario_when():
    print("RESULT when icount=%d pc=%#x" % (when(), pc()))
    print("RESULT " + run("monitor bhrr when").strip())


def main():
    gdb.execute("set pagination off")
    gdb.execute("set confirm off")
    gdb.execute("set architecture i386:x86-64")
    # a reverse motion replays the run again: seconds on a long run
    gdb.execute("set remotetimeout 600")
    gdb.execute("target remote " + os.environ["TARGET"])
    globals()["scenario_" + os.environ["SCENARIO"]]()
    if not os.environ.get("NATIVE"):
        print("RESULT stats " + run("monitor bhrr stats").strip())
    gdb.execute("kill")


main()
