/**
 * The seccomp filter every layer runs under (bwrap `--seccomp FD` loads it): a classic BPF
 * program that refuses, with EPERM, the system calls a package manager in a chroot never needs
 * and an escape would (mounts, namespaces, modules, kexec, ptrace, keyrings, bpf, ...), refuses
 * clone() with a namespace flag, and answers clone3 with ENOSYS (its flags sit in memory a filter
 * cannot read; glibc then falls back to clone). Any other architecture than the runner's two (an
 * i386 or x32 system call on x86_64 included) is refused outright.
 */

/** `struct seccomp_data`: nr at 0, arch at 4, args[0] (low 32 bits on little-endian) at 16. */
const OFFSET_NR = 0;
const OFFSET_ARCH = 4;
const OFFSET_ARG0_LOW = 16;

const BPF_LD_W_ABS = 0x20;
const BPF_JMP_JEQ_K = 0x15;
const BPF_JMP_JGE_K = 0x35;
const BPF_JMP_JSET_K = 0x45;
const BPF_RET_K = 0x06;

export const SECCOMP_RET_ALLOW = 0x7fff0000;
export const SECCOMP_RET_ERRNO = 0x00050000;
export const EPERM = 1;
export const ENOSYS = 38;

export const AUDIT_ARCH_X86_64 = 0xc000003e;
export const AUDIT_ARCH_AARCH64 = 0xc00000b7;
/** x32 system calls on x86_64 carry this bit in nr. */
const X32_SYSCALL_BIT = 0x40000000;

/** CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET (NEWTIME shares clone()'s exit-signal bits). */
export const CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;

/** The refused calls by name. */
export const REFUSED_SYSCALLS = [
  'mount',
  'umount2',
  'pivot_root',
  'open_tree',
  'move_mount',
  'fsopen',
  'fsconfig',
  'fsmount',
  'fspick',
  'mount_setattr',
  'kexec_load',
  'kexec_file_load',
  'init_module',
  'finit_module',
  'delete_module',
  'ptrace',
  'process_vm_readv',
  'process_vm_writev',
  'unshare',
  'setns',
  'open_by_handle_at',
  'bpf',
  'perf_event_open',
  'keyctl',
  'add_key',
  'request_key',
  'userfaultfd',
  'swapon',
  'swapoff',
  'reboot',
  'acct',
  'quotactl',
] as const;

export type RefusedSyscall = (typeof REFUSED_SYSCALLS)[number];

/** The calls numbered from 424 on, which have the same number on every architecture (scripts/syscall.tbl). */
const UNIFIED_SYSCALL_NUMBERS = {
  open_tree: 428,
  move_mount: 429,
  fsopen: 430,
  fsconfig: 431,
  fsmount: 432,
  fspick: 433,
  clone3: 435,
  mount_setattr: 442,
} as const;

/** System call numbers per architecture (arch/x86/entry/syscalls/syscall_64.tbl; asm-generic for aarch64). */
export const SYSCALL_NUMBERS: Record<'x86_64' | 'aarch64', Record<RefusedSyscall | 'clone' | 'clone3', number>> = {
  x86_64: {
    mount: 165,
    umount2: 166,
    pivot_root: 155,
    ...UNIFIED_SYSCALL_NUMBERS,
    kexec_load: 246,
    kexec_file_load: 320,
    init_module: 175,
    finit_module: 313,
    delete_module: 176,
    ptrace: 101,
    process_vm_readv: 310,
    process_vm_writev: 311,
    unshare: 272,
    setns: 308,
    open_by_handle_at: 304,
    bpf: 321,
    perf_event_open: 298,
    keyctl: 250,
    add_key: 248,
    request_key: 249,
    userfaultfd: 323,
    swapon: 167,
    swapoff: 168,
    reboot: 169,
    acct: 163,
    quotactl: 179,
    clone: 56,
  },
  aarch64: {
    mount: 40,
    umount2: 39,
    pivot_root: 41,
    ...UNIFIED_SYSCALL_NUMBERS,
    kexec_load: 104,
    kexec_file_load: 294,
    init_module: 105,
    finit_module: 273,
    delete_module: 106,
    ptrace: 117,
    process_vm_readv: 270,
    process_vm_writev: 271,
    unshare: 97,
    setns: 268,
    open_by_handle_at: 265,
    bpf: 280,
    perf_event_open: 241,
    keyctl: 219,
    add_key: 217,
    request_key: 218,
    userfaultfd: 282,
    swapon: 224,
    swapoff: 225,
    reboot: 142,
    acct: 89,
    quotactl: 60,
    clone: 220,
  },
};

/** One `struct sock_filter`. */
export interface BpfInstruction {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

const stmt = (code: number, k: number): BpfInstruction => ({ code, jt: 0, jf: 0, k });
const jump = (code: number, k: number, jt: number, jf: number): BpfInstruction => ({ code, jt, jf, k });

/**
 * The checks for one architecture, ending in its own ALLOW / EPERM / ENOSYS returns (so every
 * jump is forward and short: at most a few dozen instructions).
 */
function archSection(arch: 'x86_64' | 'aarch64'): BpfInstruction[] {
  const numbers = SYSCALL_NUMBERS[arch];
  const refused = REFUSED_SYSCALLS.map((name) => numbers[name]);
  // [ld nr] [x32] [jeq refused...] [jeq clone3] [jeq clone] [ret allow] [ld arg0] [jset ns] [ret allow] [ret eperm] [ret enosys]
  const body: BpfInstruction[] = [stmt(BPF_LD_W_ABS, OFFSET_NR)];
  const checks = refused.length;
  // Indexes relative to the section start.
  const x32Index = 1;
  const firstCheck = 2;
  const clone3Index = firstCheck + checks;
  const cloneIndex = clone3Index + 1;
  const allowIndex = cloneIndex + 1;
  const loadArgIndex = allowIndex + 1;
  const jsetIndex = loadArgIndex + 1;
  const allowAfterArgIndex = jsetIndex + 1;
  const epermIndex = allowAfterArgIndex + 1;
  const enosysIndex = epermIndex + 1;
  const to = (from: number, target: number) => target - from - 1;
  // x32 calls on x86_64; on aarch64 no valid number is that high either.
  body.push(jump(BPF_JMP_JGE_K, X32_SYSCALL_BIT, to(x32Index, epermIndex), 0));
  refused.forEach((nr, i) => body.push(jump(BPF_JMP_JEQ_K, nr, to(firstCheck + i, epermIndex), 0)));
  body.push(jump(BPF_JMP_JEQ_K, numbers.clone3, to(clone3Index, enosysIndex), 0));
  body.push(jump(BPF_JMP_JEQ_K, numbers.clone, to(cloneIndex, loadArgIndex), 0));
  body.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
  body.push(stmt(BPF_LD_W_ABS, OFFSET_ARG0_LOW));
  body.push(jump(BPF_JMP_JSET_K, CLONE_NAMESPACE_FLAGS, to(jsetIndex, epermIndex), 0));
  body.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
  body.push(stmt(BPF_RET_K, SECCOMP_RET_ERRNO | EPERM));
  body.push(stmt(BPF_RET_K, SECCOMP_RET_ERRNO | ENOSYS));
  if (body.length !== enosysIndex + 1) throw new Error('seccomp filter layout is inconsistent');
  return body;
}

/** The whole program as instructions: dispatch on arch, then that arch's section. */
export function seccompInstructions(): BpfInstruction[] {
  const x86 = archSection('x86_64');
  const arm = archSection('aarch64');
  // [ld arch] [jeq x86 -> x86 section] [jeq arm -> arm section] [ret eperm] [x86...] [arm...]
  const program: BpfInstruction[] = [
    stmt(BPF_LD_W_ABS, OFFSET_ARCH),
    jump(BPF_JMP_JEQ_K, AUDIT_ARCH_X86_64, 2, 0),
    jump(BPF_JMP_JEQ_K, AUDIT_ARCH_AARCH64, 1 + x86.length, 0),
    stmt(BPF_RET_K, SECCOMP_RET_ERRNO | EPERM),
    ...x86,
    ...arm,
  ];
  for (const instruction of program) {
    if (instruction.jt > 255 || instruction.jf > 255) throw new Error('seccomp filter jump out of range');
  }
  return program;
}

/** The program as bwrap reads it from its `--seccomp` fd: `struct sock_filter[]` in the machine's (little-endian) byte order. */
export function seccompProgram(): Buffer {
  const program = seccompInstructions();
  const buffer = Buffer.alloc(program.length * 8);
  program.forEach((instruction, i) => {
    buffer.writeUInt16LE(instruction.code, i * 8);
    buffer.writeUInt8(instruction.jt, i * 8 + 2);
    buffer.writeUInt8(instruction.jf, i * 8 + 3);
    buffer.writeUInt32LE(instruction.k >>> 0, i * 8 + 4);
  });
  return buffer;
}
