/*
 * cmd_log.c - bhrr dump / verify / stat: reading logs for people and scripts.
 *
 * Exit status of all three: 0 the log is intact; 1 it is damaged (every
 * damaged span is printed with its offset and reason, and everything
 * readable is still shown); 2 it is not a bhrr log, of a newer format, or
 * cannot be opened.  A log without its end event (a killed run) is intact
 * but "incomplete"; verify says so.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "fingerprint.h"
#include "grow.h"
#include "log.h"
#include "open_log.h"

/* @opaque: the log's path. */
static void
print_damage(void *opaque, uint64_t off, uint64_t dropped, const char *reason)
{
	fprintf(stderr, "bhrr: %s: damaged at offset %" PRIu64 ": %s (%" PRIu64 " bytes dropped)\n",
		(const char *)opaque, off, reason, dropped);
}

/*
 * Open @path or exit with the reader's message: 1 for a damaged header, 2
 * for anything else.  Damage found later goes to stderr.
 */
static struct log_reader *
open_or_die(const char *path)
{
	int code;
	struct log_reader *r = open_log(path, NULL, &code);

	if (r == NULL)
		exit(code == LOG_E_HEADER ? 1 : 2);
	log_reader_on_damage(r, print_damage, (void *)path);
	return r;
}

void
json_str(FILE *f, const char *s, size_t len)
{
	fputc('"', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/*
 * file_read's four fields (share, path, size, xxh3): the share up to the
 * first tab, size and xxh3 after the last two, the path (which may hold a
 * tab) between; 0, or -1.
 */
static int
file_read_fields(const struct log_event *ev, const char *f[4], size_t len[4])
{
	const char *p = ev->text, *end = ev->text + ev->text_len, *t1, *t2 = NULL, *t3 = NULL;

	t1 = memchr(p, '\t', ev->text_len);
	for (const char *q = end; q > (t1 ? t1 + 1 : end); q--)
		if (q[-1] == '\t') {
			if (t3 == NULL)
				t3 = q - 1;
			else {
				t2 = q - 1;
				break;
			}
		}
	if (t1 == NULL || t2 == NULL)
		return -1;
	f[0] = p, len[0] = (size_t)(t1 - p);
	f[1] = t1 + 1, len[1] = (size_t)(t2 - t1 - 1);
	f[2] = t2 + 1, len[2] = (size_t)(t3 - t2 - 1);
	f[3] = t3 + 1, len[3] = (size_t)(end - t3 - 1);
	for (size_t k = 0; k < len[2]; k++)
		if (f[2][k] < '0' || f[2][k] > '9')
			return -1; /* JSON prints it as a number */
	for (size_t k = 0; k < len[3]; k++)
		if (!strchr("0123456789abcdef", f[3][k]) || f[3][k] == 0)
			return -1;
	return len[2] && len[3] ? 0 : -1;
}

void
json_cstr(FILE *f, const char *s)
{
	if (s == NULL)
		fputs("null", f);
	else
		json_str(f, s, strlen(s));
}

/* The name an event carries: the ident's bh->name, or a string's text. */
static const char *
event_name(const struct log_reader *r, const struct log_event *ev, uint64_t *cb_off, int *has_cb)
{
	const char *name = NULL;

	*has_cb = 0;
	if (ev->kind == LOG_EV_BH_RUN || ev->kind == LOG_EV_BH_SCHEDULE ||
	    ev->kind == LOG_EV_BH_NEW || ev->kind == LOG_EV_BH_DELETE) {
		if (log_reader_ident(r, ev->ident, cb_off, &name) == 0)
			*has_cb = 1;
	} else if (ev->kind == LOG_EV_IDENT) {
		name = log_reader_string(r, ev->name_id);
		*cb_off = ev->cb_off;
		*has_cb = 1;
	} else if (ev->kind == LOG_EV_STRING) {
		name = log_reader_string(r, ev->id);
	}
	return name;
}

static const char *const roles[] = { "vcpu", "main", "worker", "other" };
static const char *const ops[] = { "read", "write", "flush", "discard", "other" };

static const char *
role_name(uint64_t role)
{
	return role < 4 ? roles[role] : "?";
}

/*
 * How an event landed (LOG_F_*), as text: " at_once", " at_io", " more" (a
 * frame's piece), or nothing.
 */
static void
put_flags(FILE *f, uint64_t flags)
{
	fprintf(f, "%s%s%s", flags & LOG_F_AT_ONCE ? " at_once" : "", flags & LOG_F_AT_IO ? " at_io" : "",
		flags & LOG_F_MORE ? " more" : "");
}

/* The same as JSON members: ,"at_once":B,"at_io":B, and ,"more":true on a frame's piece */
static void
put_flags_json(FILE *f, uint64_t flags)
{
	fprintf(f, ",\"at_once\":%s,\"at_io\":%s", flags & LOG_F_AT_ONCE ? "true" : "false",
		flags & LOG_F_AT_IO ? "true" : "false");
	if (flags & LOG_F_MORE)
		fputs(",\"more\":true", f);
}

/* Console bytes as text: printable ASCII as it is, the rest (and quote, backslash) as \xHH. */
static void
put_bytes(FILE *f, const char *p, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			fputc(c, f);
		else
			fprintf(f, "\\x%02x", c);
	}
	fputc('"', f);
}

/* The same bytes in hex, for JSON. */
static void
put_hex(FILE *f, const char *p, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", (unsigned char)p[i]);
	fputc('"', f);
}

static void
dump_text(FILE *f, const struct log_reader *r, const struct log_event *ev)
{
	const char *kind = log_kind_name(ev->kind);
	uint64_t cb = 0;
	int has_cb;
	const char *name = event_name(r, ev, &cb, &has_cb);

	if (kind)
		fprintf(f, "%" PRIu64 " %s", ev->seq, kind);
	else
		fprintf(f, "%" PRIu64 " unknown(%u)", ev->seq, ev->kind);
	if (ev->icount_how == LOG_IC_UNKNOWN)
		fputs(" icount=?", f);
	else
		fprintf(f, " icount=%s%" PRId64, ev->icount_how == LOG_IC_LOWER ? ">=" : "", ev->icount);
	switch (ev->kind) {
	case LOG_EV_STRING:
		fprintf(f, " id=%" PRIu64 " text=%s", ev->id, name ? name : "");
		break;
	case LOG_EV_IDENT:
		fprintf(f, " id=%" PRIu64 " cb=+%#" PRIx64 " name=%s", ev->id, ev->cb_off,
			name ? name : "?");
		break;
	case LOG_EV_BH_SCHEDULE:
	case LOG_EV_BH_RUN:
	case LOG_EV_BH_NEW:
	case LOG_EV_BH_DELETE:
		fprintf(f, " ident=%" PRIu64, ev->ident);
		if (has_cb)
			fprintf(f, " cb=+%#" PRIx64 " name=%s", cb, name ? name : "?");
		if (ev->kind == LOG_EV_BH_RUN) {
			fprintf(f, " ordinal=%" PRIu64, ev->ordinal);
			put_flags(f, ev->flags);
		}
		if (ev->kind != LOG_EV_BH_SCHEDULE) {
			if (ev->instance)
				fprintf(f, " instance=%" PRIu64, ev->instance);
		} else {
			const char *site = ev->site ? log_reader_string(r, ev->site) : NULL;

			fprintf(f, " role=%s", role_name(ev->role));
			if (ev->site)
				fprintf(f, " site=%s", site ? site : "?");
		}
		break;
	case LOG_EV_IO_SUBMIT:
		fprintf(f, " req=%" PRIu64 " op=%s offset=%" PRIu64 " bytes=%" PRIu64, ev->req,
			ev->op < 5 ? ops[ev->op] : "?", ev->offset, ev->bytes);
		break;
	case LOG_EV_IO_COMPLETE:
		fprintf(f, " req=%" PRIu64 " ret=%" PRId64, ev->req, ev->ret);
		put_flags(f, ev->flags);
		break;
	case LOG_EV_WARP:
		fprintf(f, " delta_ns=%" PRId64, ev->delta_ns);
		break;
	case LOG_EV_SLICE:
		fprintf(f, " vcpu=%" PRIu64 " ran=%" PRIu64 "%s%s", ev->id, ev->bytes,
			ev->flags & LOG_F_AFTER_EXC ? " after_exc" : "",
			ev->flags & LOG_F_DELIVERED ? " delivered" : "");
		break;
	case LOG_EV_CHR_READ:
	case LOG_EV_RNG_READ:
		fprintf(f, " %s=%" PRIu64 " bytes=%zu",
			ev->kind == LOG_EV_CHR_READ ? "frontend" : "device", ev->id, ev->text_len);
		put_flags(f, ev->flags);
		fputs(" data=", f);
		put_bytes(f, ev->text, ev->text_len);
		break;
	case LOG_EV_MONITOR:
		fprintf(f, " request=%.*s", (int)ev->text_len, ev->text);
		break;
	case LOG_EV_NET_RECV:
		fprintf(f, " nic=%" PRIu64 " qflags=%" PRIu64 " bytes=%zu", ev->id & 0xffffffffu,
			ev->id >> 32, ev->text_len);
		put_flags(f, ev->flags);
		fputs(" data=", f);
		put_bytes(f, ev->text, ev->text_len);
		break;
	case LOG_EV_CHR_EVENT:
		fprintf(f, " frontend=%" PRIu64 " event=%s", ev->id,
			ev->text_len ? log_chr_event_name((uint8_t)ev->text[0]) : "?");
		put_flags(f, ev->flags);
		break;
	case LOG_EV_HOST_CLOCK: {
		int64_t v;

		if (log_host_clock_value(ev, &v) == 0)
			fprintf(f, " what=%s value=%" PRId64, log_host_clock_name(ev->id), v);
		else
			fprintf(f, " what=%s value=%.*s", log_host_clock_name(ev->id),
				(int)ev->text_len, ev->text);
		break;
	}
	case LOG_EV_HOST_TIMER:
		fprintf(f, " timer=%" PRIu64, ev->id);
		put_flags(f, ev->flags);
		break;
	case LOG_EV_FILE_READ: {
		const char *fld[4];
		size_t fl[4];

		if (file_read_fields(ev, fld, fl) == 0)
			fprintf(f, " share=%.*s path=%.*s size=%.*s xxh3=%.*s", (int)fl[0], fld[0],
				(int)fl[1], fld[1], (int)fl[2], fld[2], (int)fl[3], fld[3]);
		break;
	}
	case LOG_EV_NESTED_POLL:
		fprintf(f, " role=%s", role_name(ev->role));
		break;
	case LOG_EV_VM_STOP:
	case LOG_EV_VM_RESUME:
		fprintf(f, " state=%" PRIu64, ev->state);
		break;
	case LOG_EV_DIVERGE:
		fprintf(f, " index=%" PRIu64 " expected=%.*s actual=%.*s", ev->index,
			(int)ev->text_len, ev->text, (int)ev->text2_len, ev->text2);
		break;
	case LOG_EV_CHAOS:
		fprintf(f, " decision=%" PRIu64 " value=%" PRId64, ev->decision, ev->value);
		break;
	case LOG_EV_END:
		fprintf(f, " complete=%" PRIu64 " events=%" PRIu64 " dropped=%" PRIu64
			" wall_ms=%.1f", ev->complete, ev->events, ev->dropped,
			(double)ev->wall_ns / 1e6);
		break;
	default:
		break;
	}
	fputc('\n', f);
}

static void
dump_json(FILE *f, const struct log_reader *r, const struct log_event *ev)
{
	const char *kind = log_kind_name(ev->kind);
	uint64_t cb = 0;
	int has_cb;
	const char *name = event_name(r, ev, &cb, &has_cb);

	fprintf(f, "{\"seq\":%" PRIu64 ",\"kind\":\"%s\"", ev->seq, kind ? kind : "unknown");
	if (!kind)
		fprintf(f, ",\"code\":%u", ev->kind);
	if (ev->icount_how == LOG_IC_UNKNOWN)
		fputs(",\"icount\":null", f);
	else
		fprintf(f, ",\"icount\":%" PRId64 ",\"icount_exact\":%s", ev->icount,
			ev->icount_how == LOG_IC_EXACT ? "true" : "false");
	fputs(",\"name\":", f);
	json_cstr(f, name);
	if (has_cb)
		fprintf(f, ",\"cb_off\":%" PRIu64, cb);
	switch (ev->kind) {
	case LOG_EV_STRING:
	case LOG_EV_IDENT:
		fprintf(f, ",\"id\":%" PRIu64, ev->id);
		break;
	case LOG_EV_BH_SCHEDULE:
		fprintf(f, ",\"ident\":%" PRIu64 ",\"role\":\"%s\",\"site\":", ev->ident,
			role_name(ev->role));
		json_cstr(f, ev->site ? log_reader_string(r, ev->site) : NULL);
		break;
	case LOG_EV_BH_RUN:
		fprintf(f, ",\"ident\":%" PRIu64 ",\"ordinal\":%" PRIu64, ev->ident, ev->ordinal);
		put_flags_json(f, ev->flags);
		if (ev->instance)
			fprintf(f, ",\"instance\":%" PRIu64, ev->instance);
		break;
	case LOG_EV_BH_NEW:
	case LOG_EV_BH_DELETE:
		fprintf(f, ",\"ident\":%" PRIu64 ",\"instance\":%" PRIu64, ev->ident, ev->instance);
		break;
	case LOG_EV_IO_SUBMIT:
		fprintf(f, ",\"req\":%" PRIu64 ",\"op\":\"%s\",\"offset\":%" PRIu64
			",\"bytes\":%" PRIu64, ev->req, ev->op < 5 ? ops[ev->op] : "?", ev->offset,
			ev->bytes);
		break;
	case LOG_EV_IO_COMPLETE:
		fprintf(f, ",\"req\":%" PRIu64 ",\"ret\":%" PRId64, ev->req, ev->ret);
		put_flags_json(f, ev->flags);
		break;
	case LOG_EV_WARP:
		fprintf(f, ",\"delta_ns\":%" PRId64, ev->delta_ns);
		break;
	case LOG_EV_SLICE:
		fprintf(f, ",\"vcpu\":%" PRIu64 ",\"ran\":%" PRIu64 ",\"after_exc\":%s,\"delivered\":%s",
			ev->id, ev->bytes, ev->flags & LOG_F_AFTER_EXC ? "true" : "false",
			ev->flags & LOG_F_DELIVERED ? "true" : "false");
		break;
	case LOG_EV_CHR_READ:
	case LOG_EV_RNG_READ:
		fprintf(f, ",\"%s\":%" PRIu64 ",\"bytes\":%zu",
			ev->kind == LOG_EV_CHR_READ ? "frontend" : "device", ev->id, ev->text_len);
		put_flags_json(f, ev->flags);
		fputs(",\"data_hex\":", f);
		put_hex(f, ev->text, ev->text_len);
		break;
	case LOG_EV_MONITOR:
		fputs(",\"request\":", f);
		json_str(f, ev->text, ev->text_len);
		break;
	case LOG_EV_NET_RECV:
		fprintf(f, ",\"nic\":%" PRIu64 ",\"qflags\":%" PRIu64 ",\"bytes\":%zu",
			ev->id & 0xffffffffu, ev->id >> 32, ev->text_len);
		put_flags_json(f, ev->flags);
		fputs(",\"data_hex\":", f);
		put_hex(f, ev->text, ev->text_len);
		break;
	case LOG_EV_CHR_EVENT:
		fprintf(f, ",\"frontend\":%" PRIu64 ",\"event\":\"%s\"", ev->id,
			ev->text_len ? log_chr_event_name((uint8_t)ev->text[0]) : "?");
		put_flags_json(f, ev->flags);
		break;
	case LOG_EV_HOST_CLOCK: {
		int64_t v;

		fprintf(f, ",\"what\":\"%s\",\"value\":", log_host_clock_name(ev->id));
		if (log_host_clock_value(ev, &v) == 0)
			fprintf(f, "%" PRId64, v);
		else
			json_str(f, ev->text, ev->text_len);
		break;
	}
	case LOG_EV_HOST_TIMER:
		fprintf(f, ",\"timer\":%" PRIu64, ev->id);
		put_flags_json(f, ev->flags);
		break;
	case LOG_EV_FILE_READ: {
		const char *fld[4];
		size_t fl[4];

		if (file_read_fields(ev, fld, fl) == 0) {
			fputs(",\"share\":", f);
			json_str(f, fld[0], fl[0]);
			fputs(",\"path\":", f);
			json_str(f, fld[1], fl[1]);
			fprintf(f, ",\"size\":%.*s,\"xxh3\":\"%.*s\"", (int)fl[2], fld[2], (int)fl[3],
				fld[3]);
		}
		break;
	}
	case LOG_EV_NESTED_POLL:
		fprintf(f, ",\"role\":\"%s\"", role_name(ev->role));
		break;
	case LOG_EV_VM_STOP:
	case LOG_EV_VM_RESUME:
		fprintf(f, ",\"state\":%" PRIu64, ev->state);
		break;
	case LOG_EV_DIVERGE:
		fprintf(f, ",\"index\":%" PRIu64 ",\"expected\":", ev->index);
		json_str(f, ev->text, ev->text_len);
		fputs(",\"actual\":", f);
		json_str(f, ev->text2, ev->text2_len);
		break;
	case LOG_EV_CHAOS:
		fprintf(f, ",\"decision\":%" PRIu64 ",\"value\":%" PRId64, ev->decision, ev->value);
		break;
	case LOG_EV_END:
		fprintf(f, ",\"complete\":%s,\"events\":%" PRIu64 ",\"dropped\":%" PRIu64
			",\"wall_ns\":%" PRIu64, ev->complete ? "true" : "false", ev->events,
			ev->dropped, ev->wall_ns);
		break;
	default:
		break;
	}
	fputs("}\n", f);
}

static void
dump_header(FILE *f, const struct log_header *h)
{
	static const char *const modes[] = { "none", "exact", "ordering" };

	fprintf(f, "# bhrr log format %u, written by bhrr %s\n", h->version, h->bhrr_version);
	fprintf(f, "# qemu %s, build-id %s, exe %s\n", h->qemu_version, h->build_id, h->exe);
	fprintf(f, "# icount mode %s, shift %u; host %s; pid %" PRIu64 "\n",
		h->icount_mode < 3 ? modes[h->icount_mode] : "?", h->icount_shift, h->host, h->pid);
	fputs("# argv", f);
	for (int i = 0; i < h->argc; i++)
		fprintf(f, " %s", h->argv[i]);
	fputc('\n', f);
	for (int i = 0; i < h->nimages; i++) {
		struct fp_image im;

		if (fp_parse(h->image[i], &im) < 0)
			fprintf(f, "# image (unreadable) %s\n", h->image[i]);
		else if (im.ok)
			fprintf(f, "# image %s: %s, %" PRIu64 " bytes, xxh3 %016" PRIx64 "\n", im.what,
				im.path, im.size, im.xxh3);
		else
			fprintf(f, "# image %s: %s, not fingerprinted (%s)\n", im.what, im.path, im.skip);
	}
}

/* "CMD LOG [--json]": the log opened, its path in *@pathp, and *@json. */
static struct log_reader *
open_log_args(int argc, char **argv, const char **pathp, int *json)
{
	const char *path = NULL, *cmd = argv[0];

	*json = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			*json = 1;
		else if (argv[i][0] == '-' && argv[i][1])
			usage_error("%s: unknown option '%s' (usage: bhrr %s LOG [--json])", cmd, argv[i],
				    cmd);
		else if (path == NULL)
			path = argv[i];
		else
			usage_error("%s: one log at a time (usage: bhrr %s LOG [--json])", cmd, cmd);
	}
	if (path == NULL)
		usage_error("%s: no log given (usage: bhrr %s LOG [--json])", cmd, cmd);
	*pathp = path;
	return open_or_die(path);
}

int
cmd_dump(int argc, char **argv)
{
	int json;
	const char *path;
	struct log_reader *r = open_log_args(argc, argv, &path, &json);
	struct log_event ev;

	if (!json)
		dump_header(stdout, log_reader_header(r));
	while (log_reader_next(r, &ev) == 1)
		(json ? dump_json : dump_text)(stdout, r, &ev);
	int damaged = log_reader_damage_count(r) > 0;

	log_reader_close(r);
	return fflush(stdout) == 0 && !damaged ? 0 : 1;
}

int
cmd_verify(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-')
		usage_error("verify: usage: bhrr verify LOG");

	struct log_reader *r = open_or_die(argv[1]);
	struct log_event ev;
	uint64_t n = 0, complete = 0, unknown;
	int has_end = 0;

	while (log_reader_next(r, &ev) == 1) {
		n++;
		if (ev.kind == LOG_EV_END) {
			has_end = 1;
			complete = ev.complete;
		}
	}
	uint64_t damage = log_reader_damage_count(r), torn = log_reader_torn_tail(r);

	unknown = log_reader_unknown_count(r);
	if (damage) {
		printf("%s: damaged: %" PRIu64 " damaged span(s), %" PRIu64
		       " bytes dropped; %" PRIu64 " events readable\n",
		       argv[1], damage, log_reader_dropped_bytes(r), n);
	} else {
		printf("%s: intact: %" PRIu64 " events, %s%s", argv[1], n,
		       !has_end ? "incomplete (no end event: the run was killed or is still going)"
		       : complete ? "complete" : "incomplete (the writer hit a write error)",
		       torn ? "" : "\n");
		if (torn)
			printf(", torn tail of %" PRIu64 " bytes ignored\n", torn);
	}
	if (unknown)
		printf("%s: %" PRIu64 " events of kinds this bhrr does not know (a newer writer?)\n",
		       argv[1], unknown);
	log_reader_close(r);
	return damage ? 1 : 0;
}

struct kind_stat {
	uint64_t count, bytes;
};

struct cb_stat {
	uint64_t ident, runs;
};

/* What stat counts in a log. */
#define STAT_VCPUS 256

struct log_stat {
	struct kind_stat ks[LOG_EV_COUNT + 1]; /* by kind; [LOG_EV_COUNT]: unknown kinds */
	struct cb_stat *cbs;                   /* bh_run counts by ident */
	size_t n_cbs, cap_cbs;
	uint64_t n, wall_ns, wire, size;
	int64_t ic_min, ic_max;                /* ic_max < ic_min: no exact icount */
	int damaged;
	uint64_t vcpu_ran[STAT_VCPUS], vcpu_turns[STAT_VCPUS]; /* slice: per vCPU */
	unsigned n_vcpus;                      /* 1 + the highest vCPU index seen, 0 none */
};

static void
stat_gather(struct log_reader *r, struct log_stat *st)
{
	struct log_event ev;

	memset(st, 0, sizeof(*st));
	st->ic_min = INT64_MAX;
	st->ic_max = INT64_MIN;
	while (log_reader_next(r, &ev) == 1) {
		unsigned k = ev.kind < LOG_EV_COUNT ? ev.kind : LOG_EV_COUNT;

		st->n++;
		st->wire += ev.wire_len;
		st->ks[k].count++;
		st->ks[k].bytes += ev.wire_len;
		if (ev.icount_how == LOG_IC_EXACT) {
			st->ic_min = ev.icount < st->ic_min ? ev.icount : st->ic_min;
			st->ic_max = ev.icount > st->ic_max ? ev.icount : st->ic_max;
		}
		if (ev.kind == LOG_EV_END)
			st->wall_ns = ev.wall_ns;
		if (ev.kind == LOG_EV_SLICE && ev.id < STAT_VCPUS) {
			st->vcpu_ran[ev.id] += ev.bytes;
			st->vcpu_turns[ev.id]++;
			if (ev.id >= st->n_vcpus)
				st->n_vcpus = (unsigned)ev.id + 1;
		}
		if (ev.kind != LOG_EV_BH_RUN)
			continue;
		size_t i = 0;

		while (i < st->n_cbs && st->cbs[i].ident != ev.ident)
			i++;
		if (i == st->n_cbs) {
			if (GROW(st->cbs, st->n_cbs, st->cap_cbs) < 0)
				die("out of memory");
			st->cbs[st->n_cbs++] = (struct cb_stat){ ev.ident, 0 };
		}
		st->cbs[i].runs++;
	}
	st->size = log_reader_file_size(r);
	st->damaged = log_reader_damage_count(r) > 0;
}

static const char *
stat_kind_name(unsigned k)
{
	return k < LOG_EV_COUNT ? log_kind_name(k) : "unknown";
}

static void
stat_print_json(const struct log_reader *r, const char *path, const struct log_stat *st)
{
	int first = 1;

	printf("{\"log\":");
	json_cstr(stdout, path);
	printf(",\"events\":%" PRIu64 ",\"file_bytes\":%" PRIu64
	       ",\"bytes_per_event\":%.2f,\"damaged\":%s,\"kinds\":{",
	       st->n, st->size, st->n ? (double)st->size / (double)st->n : 0.0,
	       st->damaged ? "true" : "false");
	for (unsigned k = 0; k <= LOG_EV_COUNT; k++) {
		if (!st->ks[k].count)
			continue;
		printf("%s\"%s\":{\"count\":%" PRIu64 ",\"bytes_per_event\":%.2f}", first ? "" : ",",
		       stat_kind_name(k), st->ks[k].count,
		       (double)st->ks[k].bytes / (double)st->ks[k].count);
		first = 0;
	}
	printf("},\"callbacks\":[");
	for (size_t i = 0; i < st->n_cbs; i++) {
		uint64_t cb = 0;
		const char *name = NULL;

		log_reader_ident(r, st->cbs[i].ident, &cb, &name);
		printf("%s{\"ident\":%" PRIu64 ",\"name\":", i ? "," : "", st->cbs[i].ident);
		json_cstr(stdout, name);
		printf(",\"cb_off\":%" PRIu64 ",\"runs\":%" PRIu64 "}", cb, st->cbs[i].runs);
	}
	printf("],\"icount_first\":");
	if (st->ic_max >= st->ic_min)
		printf("%" PRId64 ",\"icount_last\":%" PRId64, st->ic_min, st->ic_max);
	else
		printf("null,\"icount_last\":null");
	printf(",\"wall_ns\":%" PRIu64, st->wall_ns);
	if (st->n_vcpus) {
		printf(",\"vcpus\":[");
		for (unsigned c = 0; c < st->n_vcpus; c++)
			printf("%s{\"vcpu\":%u,\"turns\":%" PRIu64 ",\"instructions\":%" PRIu64 "}",
			       c ? "," : "", c, st->vcpu_turns[c], st->vcpu_ran[c]);
		printf("]");
	}
	printf("}\n");
}

static void
stat_print_text(const struct log_reader *r, const char *path, const struct log_stat *st)
{
	printf("%s: %" PRIu64 " events in %" PRIu64 " bytes (%.2f bytes/event on disk, "
	       "%.2f in batches)%s\n", path, st->n, st->size,
	       st->n ? (double)st->size / (double)st->n : 0.0,
	       st->n ? (double)st->wire / (double)st->n : 0.0, st->damaged ? ", DAMAGED" : "");
	for (unsigned k = 0; k <= LOG_EV_COUNT; k++)
		if (st->ks[k].count)
			printf("  %-12s %10" PRIu64 " events %8.2f bytes/event\n", stat_kind_name(k),
			       st->ks[k].count, (double)st->ks[k].bytes / (double)st->ks[k].count);
	for (size_t i = 0; i < st->n_cbs; i++) {
		uint64_t cb = 0;
		const char *name = NULL;

		log_reader_ident(r, st->cbs[i].ident, &cb, &name);
		printf("  bh_run %-32s +%#-10" PRIx64 " %10" PRIu64 " runs\n", name ? name : "?", cb,
		       st->cbs[i].runs);
	}
	if (st->ic_max >= st->ic_min)
		printf("  icount span %" PRId64 " .. %" PRId64 " (%" PRId64 " instructions)\n",
		       st->ic_min, st->ic_max, st->ic_max - st->ic_min);
	for (unsigned c = 0; c < st->n_vcpus; c++)
		printf("  vcpu %-3u %10" PRIu64 " turns %14" PRIu64 " instructions\n", c,
		       st->vcpu_turns[c], st->vcpu_ran[c]);
	printf("  wall span %.3f s\n", (double)st->wall_ns / 1e9);
}

int
cmd_stat(int argc, char **argv)
{
	int json;
	const char *path;
	struct log_reader *r = open_log_args(argc, argv, &path, &json);
	struct log_stat st;

	stat_gather(r, &st);
	(json ? stat_print_json : stat_print_text)(r, path, &st);
	free(st.cbs);
	log_reader_close(r);
	return st.damaged ? 1 : 0;
}
