/*
 * gate_mon.c - monitor commands that change the guest (see gate_mon.h).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "emit.h"
#include "gate_clock.h"
#include "gate_mon.h"
#include "log.h"
#include "policy.h"
#include "qemu_rt.h"
#include "replay.h"
#include "symbols.h"
#include "vlog.h"

/*
 * QEMU's QObject header (include/qapi/qmp/qobject.h), the same on every
 * 64-bit build since 4.0: the type, then the reference count.
 */
struct qobject_base {
	int type;
	size_t refcnt;
};
#define QTYPE_QDICT 4
/* QmpCommand (include/qapi/qmp/dispatch.h): name, fn, then the options */
struct qmp_command_head {
	const char *name;
	void *fn;
	unsigned options;
};
#define QCO_COROUTINE (1u << 3)
/* GLib's GString, a public struct */
struct gstring {
	char *str;
	size_t len;
	size_t allocated_len;
};

typedef void *qmp_dispatch_fn(const void *cmds, void *request, bool allow_oob, void *cur_mon);
typedef void hmp_fn(void *mon, const char *cmdline);
typedef void main_loop_wait_fn(int nonblocking);

static qmp_dispatch_fn *real_qmp_dispatch;
static hmp_fn *real_hmp;
static main_loop_wait_fn *real_main_loop_wait;

static enum { MON_OFF, MON_RECORD, MON_REPLAY } mode; /* set once, before main() */
static int in_hmc;          /* BQL: a logged human-monitor-command runs its HMP line */
static int injecting;       /* BQL: the main thread runs a recorded command */
static int resume_pending;  /* BQL: vCPUs bhrr paused, to resume at the first turn after the command */
static int cmd_running;     /* BQL: a recorded command between its pause and its return */
static int stop_asked;      /* BQL: replay stopped the vCPU at a monitor action */
static int said_refused, said_long; /* BQL */
/*
 * Turns of the main loop (main_loop_wait calls), and the one of the last
 * monitor command logged: QEMU acts on what a command requested (a reset,
 * a powerdown) between two turns, so a replay runs two commands in one turn
 * only if the record did.  BQL.
 */
static unsigned long long turns, last_turn = (unsigned long long)-1;
static atomic_ullong commands, refused;

void
gate_mon_start(int recording, int replaying)
{
	mode = recording ? MON_RECORD : replaying ? MON_REPLAY : MON_OFF;
}

int
gate_mon_holding(void)
{
	/* read without the BQL too, as a hint (vcpu_sched.c): written under it */
	return __atomic_load_n(&resume_pending, __ATOMIC_RELAXED) ||
	       __atomic_load_n(&stop_asked, __ATOMIC_RELAXED);
}

int
gate_mon_replaying(void)
{
	return injecting > 0;
}

unsigned long long
gate_mon_commands(void)
{
	return commands;
}

unsigned long long
gate_mon_refused(void)
{
	return refused;
}

static void *
sym(enum qsym_id id)
{
	return shim_qemu.sym[id].addr;
}

static void
unref(void *obj)
{
	struct qobject_base *o = obj;

	if (o != NULL && --o->refcnt == 0)
		((void (*)(void *))sym(QS_QOBJECT_DESTROY))(o);
}

static const char *
dict_str(void *dict, const char *key)
{
	return ((const char *(*)(void *, const char *))sym(QS_QDICT_GET_TRY_STR))(dict, key);
}

static void *
dict_dict(void *dict, const char *key)
{
	return ((void *(*)(void *, const char *))sym(QS_QDICT_GET_QDICT))(dict, key);
}

/* A QMP request's command name, or NULL (not an object, or exec-oob: not ours). */
static const char *
request_name(void *request)
{
	if (request == NULL || ((struct qobject_base *)request)->type != QTYPE_QDICT)
		return NULL;
	return dict_str(request, "execute");
}

/* The first word of an HMP line into @w. */
static void
first_word(const char *line, char *w, size_t len)
{
	size_t n = 0;

	while (*line == ' ' || *line == '\t')
		line++;
	while (line[n] && line[n] != ' ' && line[n] != '\t' && line[n] != '\n' && n + 1 < len)
		n++;
	memcpy(w, line, n);
	w[n] = 0;
}

static int
in_list(const char *w, const char *const *list)
{
	for (int i = 0; list[i]; i++)
		if (strcmp(w, list[i]) == 0)
			return 1;
	return 0;
}

/* HMP commands that read and never change the guest (or only the host's files) */
static const char *const hmp_harmless[] = {
	"info", "help", "?", "x", "xp", "print", "p", "sum", "screendump", "memsave", "pmemsave",
	"log", "trace-event", NULL,
};

static int
hmp_quit(const char *w)
{
	return strcmp(w, "quit") == 0 || strcmp(w, "q") == 0;
}

/* QMP commands that read and never change the guest */
static const char *const qmp_harmless[] = {
	"qmp_capabilities", "screendump", "qom-list", "qom-get", "qom-list-types",
	"qom-list-properties", "device-list-properties", "trace-event-get-state",
	"trace-event-set-state", "getfd", "closefd", "add-fd", "remove-fd", "memsave",
	"pmemsave", NULL,
};

static int
harmless(const char *name, void *request)
{
	if (strncmp(name, "query-", 6) == 0 || strncmp(name, "x-query-", 8) == 0 ||
	    in_list(name, qmp_harmless))
		return 1;
	if (strcmp(name, "human-monitor-command") == 0) {
		void *args = dict_dict(request, "arguments");
		const char *line = args ? dict_str(args, "command-line") : NULL;
		char w[32];

		if (line == NULL)
			return 1; /* refused by QEMU itself */
		first_word(line, w, sizeof(w));
		return in_list(w, hmp_harmless);
	}
	return 0;
}

static int
quit_request(const char *name, void *request)
{
	if (strcmp(name, "quit") == 0)
		return 1;
	if (strcmp(name, "human-monitor-command") == 0) {
		void *args = dict_dict(request, "arguments");
		const char *line = args ? dict_str(args, "command-line") : NULL;
		char w[32];

		if (line != NULL) {
			first_word(line, w, sizeof(w));
			return hmp_quit(w);
		}
	}
	return 0;
}

/*
 * Record: stop the vCPUs where they are unless the VM is stopped, log
 * @json at the icount there, and let the caller run the command.  Returns
 * whether it paused them (resume after the command, at the next turn).
 */
static int
log_here(const char *json, size_t len)
{
	int paused = 0;
	unsigned how;

	if (len > LOG_TEXT_MAX) {
		if (!said_long) {
			said_long = 1;
			vlog_error("a monitor command of %zu bytes is longer than a log event holds "
				   "(%d): it runs, but is not recorded, and a replay will differ",
				   len, LOG_TEXT_MAX);
		}
		return 0;
	}
	if (qrt.runstate_is_running()) {
		((void (*)(void))sym(QS_PAUSE_ALL_VCPUS))();
		paused = 1;
		resume_pending = 1; /* and no warp meanwhile (gate_mon_holding) */
	}
	int64_t ic = qrt_icount_now(&how, 1);

	emit_monitor(turns == last_turn, json, len, how, ic);
	last_turn = turns;
	atomic_fetch_add(&commands, 1);
	vlog("monitor: recorded %.*s at icount %lld", (int)(len < 200 ? len : 200), json,
	     (long long)ic);
	return paused;
}

static void
say_refused(const char *what)
{
	atomic_fetch_add(&refused, 1);
	if (!said_refused) {
		said_refused = 1;
		vlog_say("replay: live monitor command '%s' ignored: the recorded commands are "
			 "replayed (queries and quit still run)", what);
	}
}

static int
ours(void)
{
	return mode != MON_OFF && qrt_in_main_thread() &&
	       (qrt.bql_locked == NULL || qrt.bql_locked());
}

static void *
hk_qmp_dispatch(const void *cmds, void *request, bool allow_oob, void *cur_mon)
{
	const char *name;

	if (!ours() || in_hmc || injecting || cmds != sym(QS_QMP_COMMANDS) ||
	    (name = request_name(request)) == NULL || harmless(name, request))
		return real_qmp_dispatch(cmds, request, allow_oob, cur_mon);
	if (mode == MON_REPLAY) {
		if (replay_input_free() || quit_request(name, request))
			return real_qmp_dispatch(cmds, request, allow_oob, cur_mon);
		char other[96];

		say_refused(name);
		/* QEMU answers, with the request's id: CommandNotFound naming why */
		snprintf(other, sizeof(other), "bhrr-replay-ignores-%s", name);
		((void (*)(void *, const char *, const char *))sym(QS_QDICT_PUT_STR))(request, "execute",
										  other);
		return real_qmp_dispatch(cmds, request, allow_oob, cur_mon);
	}
	struct gstring *js = ((struct gstring * (*)(void *)) sym(QS_QOBJECT_TO_JSON))(request);
	int paused = js ? log_here(js->str, js->len) : 0;

	if (js) {
		void (*gfree)(void *, int) = (void (*)(void *, int))dlsym(RTLD_DEFAULT, "g_string_free");

		if (gfree)
			gfree(js, 1);
	}
	in_hmc = strcmp(name, "human-monitor-command") == 0;
	cmd_running += paused;
	/* a command outside a coroutine yields here until its BH ran it */
	void *rsp = real_qmp_dispatch(cmds, request, allow_oob, cur_mon);

	cmd_running -= paused;
	in_hmc = 0;
	return rsp;
}

/* @s as a JSON string's contents into @out (room for 6 bytes per byte); its length. */
static size_t
json_escape(const char *s, char *out)
{
	size_t n = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c < 0x20) {
			n += (size_t)sprintf(out + n, "\\u%04x", c);
		} else {
			out[n++] = (char)c;
		}
	}
	out[n] = 0;
	return n;
}

static void
hk_hmp(void *mon, const char *cmdline)
{
	char w[32];

	if (!ours() || in_hmc || injecting || cmdline == NULL) {
		real_hmp(mon, cmdline);
		return;
	}
	first_word(cmdline, w, sizeof(w));
	if (w[0] == 0 || in_list(w, hmp_harmless)) {
		real_hmp(mon, cmdline);
		return;
	}
	if (mode == MON_REPLAY) {
		if (replay_input_free() || hmp_quit(w)) {
			real_hmp(mon, cmdline);
			return;
		}
		say_refused(w);
		((int (*)(void *, const char *, ...))sym(QS_MONITOR_PRINTF))(
			mon, "bhrr: a replay ignores live commands that change the guest ('%s'); "
			     "the recorded ones are replayed\n", w);
		return;
	}
	size_t len = strlen(cmdline);
	char *esc = malloc(6 * len + 1), *json = malloc(6 * len + 96);

	if (esc == NULL || json == NULL) {
		free(esc);
		free(json);
		vlog_error("monitor: out of memory; '%s' runs unrecorded", w);
		real_hmp(mon, cmdline);
		return;
	}
	json_escape(cmdline, esc);
	int n = sprintf(json, "{\"execute\": \"human-monitor-command\", \"arguments\": "
			      "{\"command-line\": \"%s\"}}", esc);
	int paused = log_here(json, (size_t)n);

	free(esc);
	free(json);
	in_hmc = 1;
	cmd_running += paused;
	real_hmp(mon, cmdline);
	cmd_running -= paused;
	in_hmc = 0;
}

/* ---- replay: the recorded commands, run by the main loop ---- */

void
gate_mon_due(void)
{
	if (stop_asked)
		return;
	if (qrt_current_cpu() == NULL) {
		replay_free("cannot stop the vCPU for a recorded monitor command");
		return;
	}
	stop_asked = 1;
	((void (*)(void))sym(QS_CPU_STOP_CURRENT))();
	((void (*)(void))sym(QS_QEMU_NOTIFY_EVENT))();
}

/* Run recorded request @a; 0, or -1 after naming a divergence.  Main thread, BQL. */
static int
run_recorded(const struct replay_action *a)
{
	char buf[LOG_TEXT_MAX + 1];
	void *err = NULL;

	memcpy(buf, a->data, a->a.len);
	buf[a->a.len] = 0;
	void *req = ((void *(*)(const char *, void **))sym(QS_QOBJECT_FROM_JSON))(buf, &err);
	const char *name = request_name(req);

	if (name == NULL) {
		if (err)
			((void (*)(void *))sym(QS_ERROR_FREE))(err);
		unref(req);
		replay_diverge("the recorded monitor command is no QMP request: %.80s", buf);
		return -1;
	}
	const struct qmp_command_head *cmd = ((const struct qmp_command_head * (*)(const void *,
			const char *)) sym(QS_QMP_FIND_COMMAND))(sym(QS_QMP_COMMANDS), name);

	if (cmd != NULL && strcmp(cmd->name, name) == 0 && (cmd->options & QCO_COROUTINE)) {
		replay_diverge("monitor command %s runs in a coroutine, which bhrr cannot give it "
			       "without a client", name);
		unref(req);
		return -1;
	}
	vlog("monitor: replaying %.200s", buf);
	injecting++;
	void *rsp = real_qmp_dispatch(sym(QS_QMP_COMMANDS), req, false, NULL);

	injecting--;
	void *e = rsp ? dict_dict(rsp, "error") : NULL;

	if (e != NULL) {
		const char *desc = dict_str(e, "desc");

		vlog_say("replay: recorded monitor command %s failed: %s", name, desc ? desc : "?");
	}
	atomic_fetch_add(&commands, 1);
	unref(rsp);
	unref(req);
	return 0;
}

/*
 * The main loop's turn: run the monitor actions due.  A stopped VM sits at
 * its icount; a running one must have been stopped there by gate_mon_due.
 */
static void
run_due(void)
{
	int ran = 0;
	const struct replay_action *due = replay_due();

	if (stop_asked && (replay_is_free() || due == NULL || due->a.kind != LOG_ACT_MONITOR)) {
		/* recorded control ended meanwhile: the vCPU stopped for nothing goes on */
		stop_asked = 0;
		if (qrt.runstate_is_running() && !debug_holding())
			((void (*)(void))sym(QS_RESUME_ALL_VCPUS))();
	}
	while (!replay_is_free()) {
		const struct replay_action *a = replay_due();

		if (a == NULL || a->a.kind != LOG_ACT_MONITOR)
			break;
		int running = qrt.runstate_is_running();
		unsigned h0;

		/*
		 * The executor brings the vCPU there; unless bhrr's pause for the
		 * command before (this same turn) holds it there already.
		 */
		if (running && !stop_asked &&
		    !(resume_pending && qrt_icount_now(&h0, 1) == a->a.icount))
			break;
		if (running)
			((void (*)(void))sym(QS_PAUSE_ALL_VCPUS))();
		stop_asked = 0;
		unsigned how;
		int64_t ic = qrt_icount_now(&how, 1);

		if (running)
			resume_pending = 1;
		if (ic != a->a.icount) {
			replay_diverge("the VM is %s at icount %lld", running ? "running" : "stopped",
				       (long long)ic);
			break;
		}
		replay.next++;
		emit_monitor(a->a.key, (const char *)a->data, a->a.len, how, ic);
		ran = 1;
		if (run_recorded(a) < 0)
			break;
		/* the next one in this turn only if the record ran it in the same turn */
		const struct replay_action *n = replay_due();

		if (n != NULL && n->a.kind == LOG_ACT_MONITOR && n->a.key == 0) {
			((void (*)(void))sym(QS_QEMU_NOTIFY_EVENT))(); /* the next turn comes soon */
			break;
		}
	}
	if (ran)
		policy_replay_arm();
}

static void
hk_main_loop_wait(int nonblocking)
{
	turns++;
	gate_clock_turn();
	if (mode != MON_OFF) {
		/* after the last turn's main_loop_should_exit: QEMU has acted on any request */
		if (resume_pending && !cmd_running) {
			resume_pending = 0;
			/* not a vCPU a debugger holds (debug.h) */
			if (qrt.runstate_is_running() && !debug_holding())
				((void (*)(void))sym(QS_RESUME_ALL_VCPUS))();
		}
		if (mode == MON_REPLAY)
			run_due();
	}
	real_main_loop_wait(nonblocking);
}

static const struct hook_spec hooks[] = {
	{ QS_QMP_DISPATCH, (void *)hk_qmp_dispatch, (void **)&real_qmp_dispatch },
	{ QS_HANDLE_HMP_COMMAND, (void *)hk_hmp, (void **)&real_hmp },
	{ QS_MAIN_LOOP_WAIT, (void *)hk_main_loop_wait, (void **)&real_main_loop_wait },
};

const struct hook_spec *
gate_mon_hooks(size_t *n)
{
	*n = sizeof(hooks) / sizeof(hooks[0]);
	return hooks;
}
