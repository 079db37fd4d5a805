/*
 * record.h - BHRR_MODE=record (see record.c and doc/record.md).
 */
#ifndef BHRR_RECORD_H
#define BHRR_RECORD_H

/*
 * From the constructor: discover layouts, open the log (BHRR_LOG), hook.
 * Returns 0, or -1 after printing why nothing was hooked.
 */
int record_start(void);
/* From the destructor: end event, flush, fsync. */
void record_finish(void);

#endif
