/*
 * action_list.h - a log's actions as a list, for bhrr diff, export and
 * bisect.  Which events are actions is decided by log_action_of() alone
 * (shim/log_action.h): what replay forces, so a recording and each of its
 * faithful replays have the same list.  diff and export also list chaos
 * decisions, in order among the actions: a chaos run and its replays make
 * the same ones, and where two runs' decisions differ is worth seeing.
 */
#ifndef BHRR_ACTION_LIST_H
#define BHRR_ACTION_LIST_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "log_action.h"

/* The kind of a listed chaos decision: key = decision, value = its value. */
#define ACTION_CHAOS (LOG_ACT_CHR_EVENT + 1)
/* Kinds a list holds: LOG_ACT_RUN .. ACTION_CHAOS, counted from 0 as kind - 1. */
#define ACTION_KINDS ACTION_CHAOS

struct action {
	struct log_action a;  /* a.kind: enum log_action_kind or ACTION_CHAOS; a.name owned */
	char *site;           /* LOG_ACT_RUN: the callback's last scheduling site, if logged */
};

struct action_list {
	const char *path;
	struct log_header hdr;  /* argv not kept */
	struct action *v;
	size_t n, cap;
	int damaged;            /* the log had damaged spans */
};

/*
 * Read the actions of the log @path into @al (and its chaos decisions with
 * @with_chaos).  @cmd names the command in a message.  Returns 0, or -1
 * after saying why the log cannot be read.
 */
int action_list_load(struct action_list *al, const char *path, const char *cmd, int with_chaos);

/* Free what action_list_load() allocated. */
void action_list_free(struct action_list *al);

/*
 * @a in words into @buf (@len bytes): "io_complete of request 47 (ret 0)
 * at icount 14022071"; "(the log ends)" for NULL.
 */
void action_describe(char *buf, size_t len, const struct action *a);

/*
 * Whether @a and @b are the same action: kind, identity and value, and
 * icount where both are exact.
 */
int action_same(const struct action *a, const struct action *b);

/* Index of the first action where @a and @b differ, or -1 if they are the same. */
long action_list_first_difference(const struct action_list *a, const struct action_list *b);

/* How many actions of each kind @al holds from index @from: c[kind - 1]. */
void action_list_count(const struct action_list *al, size_t from, uint64_t c[ACTION_KINDS]);

#endif
