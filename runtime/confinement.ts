// How a container is confined, by docker's rules: capabilities (--cap-add/--cap-drop/--privileged),
// the seccomp profile (docker's default, a file, or none) resolved for those capabilities and this
// architecture, no_new_privs, and the /proc and /sys paths masked or made read-only. The helper
// (native/src/helper.cc) applies what this module resolves; it never reads a profile itself.
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { UsageError } from './process-spec.js';

/** Linux capability numbers (linux/capability.h), by docker's names. */
export const CAPABILITIES: Record<string, number> = {
  CAP_CHOWN: 0, CAP_DAC_OVERRIDE: 1, CAP_DAC_READ_SEARCH: 2, CAP_FOWNER: 3, CAP_FSETID: 4, CAP_KILL: 5,
  CAP_SETGID: 6, CAP_SETUID: 7, CAP_SETPCAP: 8, CAP_LINUX_IMMUTABLE: 9, CAP_NET_BIND_SERVICE: 10,
  CAP_NET_BROADCAST: 11, CAP_NET_ADMIN: 12, CAP_NET_RAW: 13, CAP_IPC_LOCK: 14, CAP_IPC_OWNER: 15,
  CAP_SYS_MODULE: 16, CAP_SYS_RAWIO: 17, CAP_SYS_CHROOT: 18, CAP_SYS_PTRACE: 19, CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21, CAP_SYS_BOOT: 22, CAP_SYS_NICE: 23, CAP_SYS_RESOURCE: 24, CAP_SYS_TIME: 25,
  CAP_SYS_TTY_CONFIG: 26, CAP_MKNOD: 27, CAP_LEASE: 28, CAP_AUDIT_WRITE: 29, CAP_AUDIT_CONTROL: 30,
  CAP_SETFCAP: 31, CAP_MAC_OVERRIDE: 32, CAP_MAC_ADMIN: 33, CAP_SYSLOG: 34, CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36, CAP_AUDIT_READ: 37, CAP_PERFMON: 38, CAP_BPF: 39, CAP_CHECKPOINT_RESTORE: 40,
};

/** docker's default capability set (moby oci/caps/defaults.go), in its order. */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/**
 * docker's masked and read-only paths (moby daemon/pkg/oci/defaults.go), unless --privileged: each
 * CPU's thermal_throttle too (GHSA-6fw5-f8r9-fgfm); the helper skips those this host lacks.
 */
export function maskedPaths(): string[] {
  const paths = [
    '/proc/acpi', '/proc/asound', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/sched_debug',
    '/proc/scsi', '/proc/timer_list', '/proc/timer_stats', '/sys/devices/virtual/powercap', '/sys/firmware',
  ];
  let possible = '';
  try {
    possible = readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim(); // "0-3" or "0,2-5"
  } catch {
    // no sysfs: no per-CPU entries
  }
  for (const range of possible.split(',').filter(Boolean)) {
    const [lo, hi] = range.split('-').map(Number);
    for (let cpu = lo!; cpu <= (hi ?? lo!); cpu++) paths.push(`/sys/devices/system/cpu/cpu${cpu}/thermal_throttle`);
  }
  return paths;
}
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/**
 * What ALL and --privileged give: the capabilities of this process's bounding set that the table
 * knows. docker takes every capability the kernel supports; where berth itself runs without some
 * (a container or VM with a reduced bounding set) it could not grant them anyway.
 */
export function allCapabilities(): string[] {
  let bounding = (1n << 41n) - 1n;
  try {
    const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) bounding = BigInt(`0x${m[1]}`);
  } catch {
    // not Linux /proc: the table's
  }
  return Object.keys(CAPABILITIES).filter((c) => (bounding >> BigInt(CAPABILITIES[c]!)) & 1n);
}

function normalizeCap(cap: string): string {
  const c = cap.trim().toUpperCase();
  return c === 'ALL' || c.startsWith('CAP_') ? c : `CAP_${c}`;
}

/**
 * docker CLI's EffectiveCapAddCapDrop: names upper-cased with CAP_ added, ALL trumps the others in
 * its list, a capability both added and dropped is added. Sorted, as docker stores them.
 */
export function effectiveCapAddDrop(add: string[], drop: string[]): { capAdd: string[]; capDrop: string[] } {
  let a = new Set(add.map(normalizeCap));
  let d = new Set(drop.map(normalizeCap));
  if (a.has('ALL')) a = new Set(['ALL']);
  if (d.has('ALL')) d = new Set(['ALL']);
  for (const c of a) d.delete(c);
  return { capAdd: [...a].sort(), capDrop: [...d].sort() };
}

/** moby's TweakCapabilities: the container's capability set (also its bounding set). */
export function tweakCapabilities(capAdd: string[], capDrop: string[], privileged: boolean): string[] {
  const all = allCapabilities();
  if (privileged) return all;
  for (const [what, list] of [['CapAdd', capAdd], ['CapDrop', capDrop]] as const) {
    for (const c of list) if (c !== 'ALL' && CAPABILITIES[c] === undefined) throw new UsageError(`invalid ${what}: unknown capability: ${JSON.stringify(c)}`, false);
  }
  if (capAdd.includes('ALL')) return all.filter((c) => !capDrop.includes(c));
  if (capDrop.includes('ALL')) return [...capAdd];
  return [...DEFAULT_CAPABILITIES.filter((c) => !capDrop.includes(c)), ...capAdd.filter((c) => !DEFAULT_CAPABILITIES.includes(c))];
}

/** What `--security-opt` asks for (docker's parseSecurityOpts, CLI and daemon halves). */
export interface SecurityOpts {
  /** undefined: docker's default profile (also `seccomp=builtin`); 'unconfined': none; else a profile's JSON text. */
  seccomp?: string;
  noNewPrivileges: boolean;
  /** As docker's HostConfig.SecurityOpt shows them (a profile file's content inlined, compacted). */
  stored: string[];
}

export function parseSecurityOpts(opts: string[]): SecurityOpts {
  const out: SecurityOpts = { noNewPrivileges: false, stored: [] };
  for (const raw of opts) {
    const opt = raw.trim();
    if (opt === 'no-new-privileges') {
      out.noNewPrivileges = true;
      out.stored.push(opt);
      continue;
    }
    // key=value, or the old key:value; the CLI's message for a malformed one, the daemon's for an unknown key.
    const sep = opt.includes('=') ? '=' : opt.includes(':') ? ':' : '';
    const key = sep ? opt.slice(0, opt.indexOf(sep)) : opt;
    const value = sep ? opt.slice(opt.indexOf(sep) + 1) : '';
    if (value === '') throw new UsageError(`Invalid --security-opt: ${JSON.stringify(opt)}`, false);
    switch (key) {
      case 'seccomp': {
        if (value === 'unconfined' || value === 'builtin') {
          if (value === 'unconfined') out.seccomp = 'unconfined';
          out.stored.push(opt);
          break;
        }
        let text: string;
        try {
          text = readFileSync(value, 'utf8');
        } catch (err) {
          throw new UsageError(`opening seccomp profile (${value}) failed: ${(err as Error).message}`, false);
        }
        let profile: SeccompProfile;
        try {
          profile = JSON.parse(text) as SeccompProfile;
        } catch (err) {
          throw new UsageError(`compacting json for seccomp profile (${value}) failed: ${(err as Error).message}`, false);
        }
        out.seccomp = JSON.stringify(profile);
        out.stored.push(`seccomp=${out.seccomp}`);
        break;
      }
      case 'no-new-privileges': {
        const v = parseGoBool(value);
        if (v === undefined) throw new UsageError(`invalid --security-opt 2: ${JSON.stringify(opt)}`, false);
        out.noNewPrivileges = v;
        out.stored.push(opt);
        break;
      }
      case 'apparmor':
      case 'label':
        // berth applies neither AppArmor nor SELinux: only the values that ask for nothing pass.
        if ((key === 'apparmor' && value === 'unconfined') || (key === 'label' && value === 'disable')) {
          out.stored.push(opt);
          break;
        }
        throw new UsageError(`--security-opt ${key}=${value}: berth does not apply ${key === 'label' ? 'SELinux labels' : 'AppArmor profiles'}`, false);
      default:
        throw new UsageError(`invalid --security-opt 2: ${JSON.stringify(opt)}`, false);
    }
  }
  return out;
}

/** Go's strconv.ParseBool. */
function parseGoBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  return undefined;
}

// ---- seccomp ----

export interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

/** A profile in docker's (and containers-common's) format. */
export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures: string[] | null }[];
  syscalls?: {
    name?: string;
    names?: string[];
    action: string;
    errnoRet?: number;
    args?: SeccompArg[] | null;
    comment?: string;
    includes?: { caps?: string[]; arches?: string[]; minKernel?: string };
    excludes?: { caps?: string[]; arches?: string[]; minKernel?: string };
  }[];
}

/** A profile resolved for one container: what the helper hands to libseccomp, nothing conditional left. */
export interface ResolvedSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  /** SCMP_ARCH_* names, the native one first. */
  architectures: string[];
  syscalls: { names: string[]; action: string; errnoRet?: number; args: SeccompArg[] }[];
}

const ACTIONS = new Set(['SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG']);
const OPS = new Set(['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ']);

/** Go's GOARCH for this Node's process.arch: the names a profile's `arches` use. */
export function goArch(arch: string = process.arch): string {
  return ({ x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64', mips64el: 'mips64le' } as Record<string, string>)[arch] ?? arch;
}
const NATIVE_SCMP: Record<string, string> = {
  '386': 'SCMP_ARCH_X86', amd64: 'SCMP_ARCH_X86_64', arm: 'SCMP_ARCH_ARM', arm64: 'SCMP_ARCH_AARCH64', ppc64le: 'SCMP_ARCH_PPC64LE',
  s390x: 'SCMP_ARCH_S390X', riscv64: 'SCMP_ARCH_RISCV64', loong64: 'SCMP_ARCH_LOONGARCH64', mips64le: 'SCMP_ARCH_MIPSEL64',
};

function kernelAtLeast(kernel: string, min: string): boolean {
  const parse = (v: string) => v.split(/[.-]/).slice(0, 2).map((n) => parseInt(n, 10) || 0);
  const [ka, kb] = parse(kernel);
  const [ma, mb] = parse(min);
  return ka! > ma! || (ka === ma && kb! >= mb!);
}

/**
 * moby's setupSeccomp (profiles/seccomp/seccomp_linux.go): the architectures from archMap for
 * this machine, and each rule kept or left out by its includes/excludes on the container's
 * capabilities (its bounding set), the architecture (Go's name) and the kernel version.
 */
export function resolveSeccomp(profile: SeccompProfile, caps: string[], arch: string = goArch(), kernel: string = release()): ResolvedSeccomp {
  if (!ACTIONS.has(profile.defaultAction)) throw new UsageError(`seccomp profile: unknown defaultAction ${JSON.stringify(profile.defaultAction)}`, false);
  if (profile.architectures?.length && profile.archMap?.length) throw new UsageError("both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'", false);
  const architectures = [...(profile.architectures ?? [])];
  const native = NATIVE_SCMP[arch];
  for (const m of profile.archMap ?? []) if (m.architecture === native) architectures.push(m.architecture, ...(m.subArchitectures ?? []));
  const out: ResolvedSeccomp = { defaultAction: profile.defaultAction, ...(profile.defaultErrnoRet !== undefined ? { defaultErrnoRet: profile.defaultErrnoRet } : {}), architectures, syscalls: [] };
  for (const call of profile.syscalls ?? []) {
    if (call.name && call.names?.length) throw new UsageError(`seccomp profile: 'name' (${call.name}) and 'names' are both given in one rule`, false);
    const names = call.name ? [call.name] : (call.names ?? []);
    const inc = call.includes ?? {};
    const exc = call.excludes ?? {};
    if (exc.arches?.includes(arch)) continue;
    if (inc.arches?.length && !inc.arches.includes(arch)) continue;
    if (exc.minKernel && kernelAtLeast(kernel, exc.minKernel)) continue;
    if (inc.minKernel && !kernelAtLeast(kernel, inc.minKernel)) continue;
    if (exc.caps?.some((c) => caps.includes(c))) continue;
    if (inc.caps?.length && !inc.caps.every((c) => caps.includes(c))) continue;
    if (!ACTIONS.has(call.action)) throw new UsageError(`seccomp profile: unknown action ${JSON.stringify(call.action)}`, false);
    const args = call.args ?? [];
    for (const a of args) if (!OPS.has(a.op)) throw new UsageError(`seccomp profile: unknown operator ${JSON.stringify(a.op)}`, false);
    out.syscalls.push({ names, action: call.action, ...(call.errnoRet !== undefined ? { errnoRet: call.errnoRet } : {}), args: args.map((a) => ({ index: a.index, value: a.value, valueTwo: a.valueTwo ?? 0, op: a.op })) });
  }
  return out;
}

let defaultProfile: SeccompProfile | undefined;
/** docker's default profile, shipped as runtime/seccomp/default.json (see its README). */
export function dockerDefaultProfile(): SeccompProfile {
  // dist/runtime/confinement.js → runtime/seccomp/default.json in the package.
  defaultProfile ??= JSON.parse(readFileSync(new URL('../../runtime/seccomp/default.json', import.meta.url), 'utf8')) as SeccompProfile;
  return defaultProfile;
}

/** What the helper's configuration carries about confinement (HelperConfig's fields). */
export interface Confinement {
  capabilities: number[];
  seccomp: ResolvedSeccomp | null;
  noNewPrivileges: boolean;
  privileged: boolean;
  maskedPaths: string[];
  readonlyPaths: string[];
}

export interface ConfinementFlags {
  privileged: boolean;
  capAdd: string[];
  capDrop: string[];
  securityOpt: string[];
}

/** The flags → what docker's HostConfig records and what the helper applies. */
export function resolveConfinement(f: ConfinementFlags): { confinement: Confinement; hostConfig: { Privileged: boolean; CapAdd: string[] | null; CapDrop: string[] | null; SecurityOpt: string[] | null } } {
  const { capAdd, capDrop } = effectiveCapAddDrop(f.capAdd, f.capDrop);
  const caps = tweakCapabilities(capAdd, capDrop, f.privileged);
  const sec = parseSecurityOpts(f.securityOpt);
  let seccomp: ResolvedSeccomp | null = null;
  // moby: a privileged container gets no seccomp profile, whatever --security-opt says.
  if (!f.privileged && sec.seccomp !== 'unconfined') {
    seccomp = resolveSeccomp(sec.seccomp === undefined ? dockerDefaultProfile() : (JSON.parse(sec.seccomp) as SeccompProfile), caps);
  }
  return {
    confinement: {
      capabilities: caps.map((c) => CAPABILITIES[c]!),
      seccomp,
      noNewPrivileges: sec.noNewPrivileges,
      privileged: f.privileged,
      maskedPaths: f.privileged ? [] : maskedPaths(),
      readonlyPaths: f.privileged ? [] : READONLY_PATHS,
    },
    hostConfig: {
      Privileged: f.privileged,
      CapAdd: capAdd.length ? capAdd : null,
      CapDrop: capDrop.length ? capDrop : null,
      SecurityOpt: sec.stored.length ? sec.stored : null,
    },
  };
}
