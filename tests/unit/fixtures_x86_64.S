/*
 * fixtures_x86_64.S - one function per prologue shape the hook engine must
 * handle or refuse.  Every function takes an int in edi and returns an int,
 * so tests/unit/test_hook.c can call each one unhooked, hooked and through
 * its trampoline and compare the results.  The .size directives matter: the
 * engine reads function extents from the dynamic symbol table.
 */
#define FUNC(name) .globl name; .type name, @function; .p2align 4; name:
#define END(name) .size name, . - name

	.text

/* 1. clean: push/mov, nothing to relocate.  x + 1 */
FUNC(fx_clean)
	push %rbp
	mov %rsp, %rbp
	lea 1(%rdi), %eax
	pop %rbp
	ret
END(fx_clean)

/* 2. RIP-relative load first.  fx_data + x */
FUNC(fx_riprel)
	mov fx_data(%rip), %eax
	add %edi, %eax
	ret
END(fx_riprel)

/* 3. RIP-relative compare with imm8 (disp32 followed by an immediate). */
FUNC(fx_riprel_imm)
	cmpl $42, fx_data(%rip)
	jne 1f
	lea 100(%rdi), %eax
	ret
1:	lea 200(%rdi), %eax
	ret
END(fx_riprel_imm)

/* 4. lea rip: table lookup.  fx_table[x & 3] */
FUNC(fx_lea_rip)
	lea fx_table(%rip), %rax
	and $3, %edi
	mov (%rax,%rdi,4), %eax
	ret
END(fx_lea_rip)

/* 5. 66-prefixed SSE RIP-relative (capstone reports disp_size 2). */
FUNC(fx_sse_rip)
	movdqa fx_vec(%rip), %xmm0
	movd %xmm0, %eax
	add %edi, %eax
	ret
END(fx_sse_rip)

/* 6. call rel32 inside the window.  x + 1000 */
FUNC(fx_call_rel)
	push %rbx
	mov %edi, %ebx
	call fx_helper
	add %ebx, %eax
	pop %rbx
	ret
END(fx_call_rel)

FUNC(fx_helper)
	mov $1000, %eax
	ret
END(fx_helper)

/* 7. short jcc (rel8) inside the window.  x ? 1 : 7 */
FUNC(fx_jcc_short)
	test %edi, %edi
	je 1f
	mov $1, %eax
	ret
1:	mov $7, %eax
	ret
END(fx_jcc_short)

/* 8. jcc rel32 inside the window.  x ? 2 : 9 */
FUNC(fx_jcc_near)
	test %edi, %edi
	{disp32} jne 1f
	mov $9, %eax
	ret
	.skip 200, 0x90
1:	mov $2, %eax
	ret
END(fx_jcc_near)

/* 9. short jmp completing the window.  2x + 3 */
FUNC(fx_jmp_short)
	mov %edi, %eax
	add %eax, %eax
	jmp 1f
	ud2
1:	add $3, %eax
	ret
END(fx_jmp_short)

/* 10. exactly 5 bytes long: a jmp rel32 tail stub.  fx_clean(x) */
FUNC(fx_tail5)
	{disp32} jmp fx_clean
END(fx_tail5)

/* 11. endbr64 first.  x + 2 */
FUNC(fx_endbr)
	endbr64
	push %rbp
	mov %rsp, %rbp
	lea 2(%rdi), %eax
	pop %rbp
	ret
END(fx_endbr)

/* 12. window ends exactly at the symbol end.  fx_clean(2x + x) */
FUNC(fx_tail_window)
	lea (%rdi,%rdi,2), %edi
	{disp32} jmp fx_clean
END(fx_tail_window)

/* 13. a jcc and a call in one window, exercised with far relocation.  x ? x+1000 : 5 */
FUNC(fx_far)
	test %edi, %edi
	je 1f
	push %rbx
	mov %edi, %ebx
	call fx_helper
	add %ebx, %eax
	pop %rbx
	ret
1:	mov $5, %eax
	ret
END(fx_far)

/* 14. a RIP-relative load whose window crosses a page boundary.  fx_data - x */
	.p2align 12
	.skip 4096 - 3, 0xcc
	.globl fx_cross_page
	.type fx_cross_page, @function
fx_cross_page:
	push %rbp
	mov fx_data(%rip), %eax
	sub %edi, %eax
	pop %rbp
	ret
END(fx_cross_page)

/* ---- refused shapes ---- */

/* R1. too short: 3 bytes. */
FUNC(fx_too_short)
	mov %edi, %eax
	ret
END(fx_too_short)

/* R2. a loop branches back to +2, inside the 6-byte window.  x * x (x >= 1) */
FUNC(fx_backjump)
	xor %eax, %eax
	mov %edi, %ecx
1:	add %edi, %eax
	dec %ecx
	jnz 1b
	ret
END(fx_backjump)

/*
 * R2b. the same loop, its branch back to +4 a jg rel32 from 170 bytes on:
 * found by the byte scan that spares decoding the body.  x * x (x >= 0)
 */
FUNC(fx_backjump_far)
	xor %eax, %eax
	mov %edi, %ecx
1:	add %edi, %eax
	.fill 160, 1, 0x90
	dec %ecx
	jg 1b
	ret
END(fx_backjump_far)

/*
 * A2. bytes that read as "jmp +2", into the window, inside a mov's
 * immediate: the byte scan finds a candidate, and decoding the body
 * shows it is none.  x + 1
 */
FUNC(fx_fake_branch)
	mov %edi, %eax
	add $1, %eax
	mov $0xfaeb, %ecx
	ret
END(fx_fake_branch)

/* R3. jrcxz cannot be relocated. */
FUNC(fx_jrcxz)
	mov %edi, %ecx
	jrcxz 1f
	mov $1, %eax
	ret
1:	xor %eax, %eax
	ret
END(fx_jrcxz)

/* R4. a branch inside the window to the window. */
FUNC(fx_internal)
	test %edi, %edi
	jz 1f
1:	inc %edi
	mov %edi, %eax
	ret
END(fx_internal)

/* R5. EIP-relative operand (never called). */
FUNC(fx_eiprel)
	addr32 mov fx_data(%eip), %eax
	ret
END(fx_eiprel)

/* R6. jmp rel8 first: the window ends after 2 bytes. */
FUNC(fx_jmp_first)
	jmp 1f
1:	mov %edi, %eax
	ret
END(fx_jmp_first)

/* An unhooked function for the benchmark.  x + 1 */
FUNC(fx_plain)
	lea 1(%rdi), %eax
	ret
END(fx_plain)

/* Two identical functions for the benchmark: one hooked, one not.  x + 1 */
FUNC(fx_bench_plain)
	push %rbp
	mov %rsp, %rbp
	lea 1(%rdi), %eax
	pop %rbp
	ret
END(fx_bench_plain)

FUNC(fx_bench_hooked)
	push %rbp
	mov %rsp, %rbp
	lea 1(%rdi), %eax
	pop %rbp
	ret
END(fx_bench_hooked)

	.data
	.p2align 4
	.globl fx_data
fx_data:
	.long 42
	.p2align 4
fx_table:
	.long 10, 20, 30, 40
	.p2align 4
fx_vec:
	.long 77, 0, 0, 0

	.section .note.GNU-stack, "", @progbits
