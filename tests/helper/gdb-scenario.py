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


def position():
    """Where the guest is, as gdb shows it: icount, pc, function and line,
    and every register."""
    sal = gdb.selected_frame().find_sal()
    return (when(), pc(), gdb.selected_frame().name(), sal.line, regs())


def scenario_finish():
    """At the Nth hit of cmd_complete, step into its body, then
    reverse-finish: back in the caller, at the call; one stepi forward is
    the breakpoint hit again, with its registers.  Then finish, and
    reverse-next over the whole call (thousands of instructions, printf's
    included): back in the caller before the call, from where stepi comes
    to the breakpoint hit again."""
    run("break cmd_complete")
    for _ in range(int(os.environ.get("HIT", "3"))):
        run("continue")
    entry = position()
    caller = gdb.selected_frame().older().name()
    bt = run("backtrace")
    run("delete")
    for _ in range(4):
        run("next")
    inside = position()
    run("reverse-finish")
    back = position()
    insn = run("x/i $pc")
    run("stepi")
    again = position()
    run("finish")
    returned = position()
    run("reverse-next")
    over = position()
    walk = 0
    while when() < entry[0] and walk < 100:
        run("stepi")
        walk += 1
    print("RESULT finish caller=%s bt_frames=%d inside_line=%d back_in=%s entry_icount=%d "
          "back_icount=%d is_call=%d again_same=%d returned_in=%s returned_icount=%d "
          "over_in=%s over_icount=%d over_to_entry=%d walk_same=%d" % (
              caller, bt.count("\n#") + 1, inside[3], back[2], entry[0], back[0],
              int("call" in insn and "cmd_complete" in insn), int(again == entry),
              returned[2], returned[0], over[2], over[0], walk, int(position() == entry)))


def scenario_lines():
    """From the Nth hit of cmd_complete, MOTION (next or step) N times,
    then reverse-MOTION N times.  The guest is built with -O2, whose lines
    interleave, so gdb's backward walk need not stop where the forward one
    did; what must hold is that every stop either walk makes is a state
    the run passed through: a stepi walk over the same stretch (after a
    goto back to its start) sees each one, registers and all."""
    motion = os.environ.get("MOTION", "next")
    n = int(os.environ.get("STEPS", "8"))
    run("break cmd_complete")
    for _ in range(int(os.environ.get("HIT", "3"))):
        run("continue")
    run("delete")
    fw = [position()]
    for _ in range(n):
        run(motion)
        fw.append(position())
    bw = [position()]
    for _ in range(n):
        run("reverse-" + motion)
        bw.append(position())
    first = min(p[0] for p in fw + bw)
    last = max(p[0] for p in fw + bw)
    run("monitor bhrr goto %d" % first)
    run("maint flush register-cache")  # gdb does not know the target moved
    seen = {(p[0], p[1], p[4]) for p in [position()]}
    walk = 0
    while when() <= last:
        run("stepi")
        p = position()
        seen.add((p[0], p[1], p[4]))
        walk += 1
    unseen = [p for p in fw + bw if (p[0], p[1], p[4]) not in seen]
    backwards = all(a[0] >= b[0] for a, b in zip(bw, bw[1:]))
    print("RESULT lines motion=%s n=%d stepi_walk=%d unseen=%d backwards=%d moved=%d "
          "fw_funcs=%s bw_funcs=%s" % (
              motion, n, walk, len(unseen), int(backwards), int(bw[-1][0] < bw[0][0]),
              ",".join(sorted(set(p[2] for p in fw))), ",".join(sorted(set(p[2] for p in bw)))))
    print("unseen " + " ".join("%d:%x:%s:%d" % p[:4] for p in unseen))
    print("fw " + " ".join("%d:%x:%s:%d" % p[:4] for p in fw))
    print("bw " + " ".join("%d:%x:%s:%d" % p[:4] for p in bw))


def scenario_when():
    arch = gdb.selected_frame().architecture().name()
    # a register written through the endpoint reads back ('P', then 'g')
    run("set var $ecx = 0x5a5a1234")
    run("maint flush register-cache")
    ecx = int(gdb.parse_and_eval("$ecx")) & 0xFFFFFFFF
    print("RESULT when icount=%d pc=%#x arch=%s ecx=%#x" % (when(), pc(), arch, ecx))
    print("RESULT " + run("monitor bhrr when").strip())


def main():
    gdb.execute("set pagination off")
    gdb.execute("set confirm off")
    if os.environ.get("NATIVE") or os.environ.get("X86_64"):
        # QEMU describes its vCPU as x86-64; bhrr gives gdb the i386 view
        # of this 32-bit guest (unless --gdb-arch=qemu), so gdb unwinds its
        # frames
        gdb.execute("set architecture i386:x86-64")
    # a reverse motion replays the run again: seconds on a long run
    gdb.execute("set remotetimeout 600")
    gdb.execute("target remote " + os.environ["TARGET"])
    globals()["scenario_" + os.environ["SCENARIO"]]()
    if not os.environ.get("NATIVE"):
        print("RESULT stats " + run("monitor bhrr stats").strip())
    gdb.execute("kill")


main()
