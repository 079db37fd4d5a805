/*
 * boot.S - multiboot entry of the test guest, and the interrupt stubs.
 * QEMU's -kernel loader enters in 32-bit protected mode with flat segments.
 */
	.set MB_MAGIC, 0x1badb002
	.set MB_FLAGS, 0x00000003
	.section .multiboot, "a"
	.p2align 2
	.long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

	.text
	.code32
	.globl _start
_start:
	cli
	mov $stack_top, %esp
	/* zero .bss (the loader may not) */
	mov $__bss_start, %edi
	mov $__bss_end, %ecx
	sub %edi, %ecx
	xor %eax, %eax
	cld
	rep stosb
	push %ebx               /* multiboot info */
	call kmain
1:	hlt
	jmp 1b

/*
 * smp=N: where each application processor starts.  smp.c copies
 * ap_tramp..ap_tramp_end to a page below 1 MiB and sends the AP a STARTUP
 * IPI for it: the AP runs it in real mode with CS at that page, so the
 * code refers to nothing but CS-relative offsets and absolute addresses.
 * It loads a GDT of its own (the loader's lies in its option ROM) with the
 * BSP's selectors: the IDT's gates, which the APs share, use 0x08.
 */
	.code16
	.globl ap_tramp, ap_tramp_end
ap_tramp:
	cli
	cld
	mov %cs, %ax
	mov %ax, %ds
	lgdtl ap_gdtr - ap_tramp
	mov %cr0, %eax
	or $1, %al
	mov %eax, %cr0
	ljmpl $0x08, $ap_start32
	.p2align 2
ap_gdtr:
	.word ap_gdt_end - ap_gdt - 1
	.long ap_gdt
ap_tramp_end:
	.code32

/* Protected mode: the stack of the next free slot, then ap_main(slot + 1). */
ap_start32:
	mov $0x10, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %fs
	mov %eax, %gs
	mov %eax, %ss
	mov $1, %eax
	lock xadd %eax, ap_next
	mov ap_stack_tops(,%eax,4), %esp
	inc %eax
	push %eax
	call ap_main
1:	cli
	hlt
	jmp 1b

/* Exceptions 0-31: vector number to C, never return. */
.macro EXC n
	.globl exc\n
exc\n:
	push $\n
	jmp exc_common
.endm
.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	EXC \n
.endr
exc_common:
	call exception
	hlt

/* IRQs 0-15 on vectors 0x20-0x2f: save registers, call irq_dispatch(n). */
.macro IRQ n
	.globl irq\n
irq\n:
	pusha
	push $\n
	call irq_dispatch
	add $4, %esp
	popa
	iret
.endm
.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	IRQ \n
.endr

	.section .rodata
	/* the APs' GDT: flat 32-bit code (0x08) and data (0x10) */
	.p2align 3
ap_gdt:
	.quad 0
	.quad 0x00cf9a000000ffff
	.quad 0x00cf92000000ffff
ap_gdt_end:

	.globl exc_table, irq_table
	.p2align 2
exc_table:
.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.long exc\n
.endr
irq_table:
.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	.long irq\n
.endr

	.bss
	.p2align 4
	.skip 65536
stack_top:

	.section .note.GNU-stack, "", @progbits
