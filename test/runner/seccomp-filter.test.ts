import { describe, expect, it } from 'vitest';
import {
  AUDIT_ARCH_AARCH64,
  AUDIT_ARCH_X86_64,
  ENOSYS,
  EPERM,
  REFUSED_SYSCALLS,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  seccompProgram,
  SYSCALL_NUMBERS,
} from '../../functions/runner/seccomp-filter.ts';

/** Runs the serialized classic BPF program the way the kernel would, over one seccomp_data. */
function evaluate(program: Buffer, data: { nr: number; arch: number; arg0?: number }): number {
  const packet = Buffer.alloc(64);
  packet.writeInt32LE(data.nr, 0);
  packet.writeUInt32LE(data.arch, 4);
  packet.writeUInt32LE(data.arg0 ?? 0, 16);
  let accumulator = 0;
  for (let pc = 0; pc < program.length / 8; ) {
    const code = program.readUInt16LE(pc * 8);
    const jt = program.readUInt8(pc * 8 + 2);
    const jf = program.readUInt8(pc * 8 + 3);
    const k = program.readUInt32LE(pc * 8 + 4);
    if (code === 0x20) accumulator = packet.readUInt32LE(k);
    else if (code === 0x06) return k;
    else if (code === 0x15) pc += accumulator === k ? jt : jf;
    else if (code === 0x35) pc += accumulator >= k ? jt : jf;
    else if (code === 0x45) pc += (accumulator & k) !== 0 ? jt : jf;
    else throw new Error(`unexpected BPF code ${code.toString(16)} at ${pc}`);
    pc += 1;
  }
  throw new Error('the program fell off its end');
}

const DENY = SECCOMP_RET_ERRNO | EPERM;

describe('seccompProgram', () => {
  it.each([
    ['x86_64', AUDIT_ARCH_X86_64],
    ['aarch64', AUDIT_ARCH_AARCH64],
  ] as const)('refuses every listed call with EPERM on %s and allows ordinary ones', (arch, auditArch) => {
    // Arrange
    const program = seccompProgram();
    const numbers = SYSCALL_NUMBERS[arch];
    const ordinary = arch === 'x86_64' ? [0, 1, 2, 59, 61, 161, 105, 106, 90, 92] : [63, 64, 56, 221, 260, 51, 146, 144, 52, 55];

    // Act
    const refused = REFUSED_SYSCALLS.map((name) => evaluate(program, { nr: numbers[name], arch: auditArch }));
    const allowed = ordinary.map((nr) => evaluate(program, { nr, arch: auditArch }));

    // Assert
    expect(refused).toEqual(REFUSED_SYSCALLS.map(() => DENY));
    expect(allowed).toEqual(ordinary.map(() => SECCOMP_RET_ALLOW));
  });

  it('allows clone for threads and processes but refuses a clone that makes a namespace, and sends clone3 to its fallback', () => {
    // Arrange
    const program = seccompProgram();
    const { clone, clone3 } = SYSCALL_NUMBERS.x86_64;
    const thread = 0x003d0f00;
    const fork = 0x01200011;
    const newUser = 0x10000000 | 17;
    const newNet = 0x40000000;

    // Act
    const results = [thread, fork, newUser, newNet].map((arg0) => evaluate(program, { nr: clone, arch: AUDIT_ARCH_X86_64, arg0 }));
    const clone3Result = evaluate(program, { nr: clone3, arch: AUDIT_ARCH_X86_64 });

    // Assert
    expect(results).toEqual([SECCOMP_RET_ALLOW, SECCOMP_RET_ALLOW, DENY, DENY]);
    expect(clone3Result).toBe(SECCOMP_RET_ERRNO | ENOSYS);
  });

  it('refuses x32 calls and any other architecture, whatever the number', () => {
    // Arrange
    const program = seccompProgram();
    const AUDIT_ARCH_I386 = 0x40000003;

    // Act
    const x32Read = evaluate(program, { nr: 0x40000000, arch: AUDIT_ARCH_X86_64 });
    const i386Read = evaluate(program, { nr: 3, arch: AUDIT_ARCH_I386 });

    // Assert
    expect(x32Read).toBe(DENY);
    expect(i386Read).toBe(DENY);
  });
});
