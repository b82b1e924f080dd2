// Confinement as docker's: seccomp (docker's default profile, unconfined, a profile file),
// no-new-privileges, capabilities (--cap-add/--cap-drop/--privileged), masked and read-only
// /proc and /sys paths. Real containers as root, on images built offline from busybox-static
// plus a static probe that makes the syscalls busybox cannot (keyctl, unshare, clone3, …).
// The profile itself is compared rule by rule with the one containers-common ships.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DEFAULT_CAPABILITIES,
  dockerDefaultProfile,
  effectiveCapAddDrop,
  maskedPaths,
  parseSecurityOpts,
  READONLY_PATHS,
  resolveSeccomp,
  tweakCapabilities,
  type ResolvedSeccomp,
  type SeccompProfile,
} from './confinement.js';
import { UsageError } from './process-spec.js';
import { buildImage, busyboxLayer } from './test-images.js';

const BERTH = fileURLToPath(new URL('../../bin/launch.cjs', import.meta.url));
const isRoot = process.getuid?.() === 0;
const CONTAINERS_COMMON = '/usr/share/containers/seccomp.json';

let dir: string;
let root: string;
let image: string;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function berth(args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BERTH, ...args], { env: { ...process.env, BERTH_ROOT: root }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
const run = (...args: string[]) => berth(['run', '--rm', ...args]);

/** `probe NAME…`: makes each syscall and prints "NAME ok" or "NAME ERRNONAME". */
const PROBE = `#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char** argv) {
  for (int i = 1; i < argc; i++) {
    const char* n = argv[i];
    long rc = -1;
    errno = 0;
    if (!strcmp(n, "keyctl")) rc = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 1);
    else if (!strcmp(n, "unshare-user")) rc = unshare(CLONE_NEWUSER);
    else if (!strcmp(n, "mount")) rc = mount("probe", "/tmp", "tmpfs", 0, nullptr);
    else if (!strcmp(n, "clone3")) rc = syscall(SYS_clone3, nullptr, 0);
    else if (!strcmp(n, "vsock")) rc = socket(40 /* AF_VSOCK */, SOCK_STREAM, 0);
    else if (!strcmp(n, "personality")) rc = syscall(SYS_personality, 0xffffffffUL);
    printf("%s %s\\n", n, rc >= 0 ? "ok" : strerrorname_np(errno));
  }
  return 0;
}
`;

function status(text: string, field: string): string {
  return new RegExp(`^${field}:\\s*(\\S+)$`, 'm').exec(text)?.[1] ?? `(no ${field})`;
}
function probeResults(stdout: string): Record<string, string> {
  return Object.fromEntries(stdout.trim().split('\n').map((l) => l.split(' ') as [string, string]));
}
const hostCapBnd = () => status(readFileSync('/proc/self/status', 'utf8'), 'CapBnd');

describe('confinement', { skip: !isRoot && 'needs root (namespaces, overlayfs, seccomp)' }, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-confine-'));
    root = join(dir, 'root');
    const layout = join(dir, 'images');
    await writeFile(join(dir, 'probe.cc'), PROBE);
    execFileSync('g++', ['-static', '-O2', '-o', join(dir, 'probe'), join(dir, 'probe.cc')]);
    await buildImage(layout, 'busybox', [[...busyboxLayer(), { name: 'bin/probe', fromFile: join(dir, 'probe'), mode: 0o755 }, ...['chown', 'ln', 'rmdir'].map((a) => ({ name: `bin/${a}`, type: 'symlink' as const, linkname: 'busybox' }))]]);
    image = `oci:${layout}:busybox`;
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("a default container: docker's seccomp profile (mode 2), its 14 capabilities, no no_new_privs; keyctl, unshare -U, mount are EPERM, clone3 ENOSYS", async () => {
    const r = await run(image, 'sh', '-c', 'cat /proc/self/status; probe keyctl unshare-user mount clone3 vsock personality');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(status(r.stdout, 'Seccomp'), '2');
    assert.equal(status(r.stdout, 'NoNewPrivs'), '0');
    assert.equal(status(r.stdout, 'CapEff'), '00000000a80425fb');
    assert.equal(status(r.stdout, 'CapBnd'), '00000000a80425fb');
    assert.equal(status(r.stdout, 'CapInh'), '0000000000000000');
    // docker's answers: EPERM (defaultErrnoRet 1) for what the profile leaves out or gates behind
    // CAP_SYS_ADMIN, ENOSYS (errnoRet 38) for clone3 so that glibc falls back to clone.
    assert.deepEqual(probeResults(r.stdout.slice(r.stdout.indexOf('keyctl '))), { keyctl: 'EPERM', 'unshare-user': 'EPERM', mount: 'EPERM', clone3: 'ENOSYS', vsock: 'EPERM', personality: 'ok' });
    const m = await run(image, 'mount', '-t', 'tmpfs', 'x', '/tmp');
    assert.notEqual(m.code, 0);
  });

  test('the compiled filter is kept under $BERTH_ROOT/seccomp; a damaged file is noticed and replaced', async () => {
    const cacheDir = join(root, 'seccomp');
    const files = readdirSync(cacheDir).filter((f) => f.endsWith('.bpf'));
    assert.equal(files.length, 1, 'one filter so far: the default profile for the default capabilities');
    const path = join(cacheDir, files[0]!);
    const good = readFileSync(path);
    const bad = Buffer.from(good);
    bad[8] = bad[8]! ^ 0xff; // an instruction changed: the checksum no longer matches
    writeFileSync(path, bad);
    const r = await run(image, 'sh', '-c', 'grep Seccomp: /proc/self/status; probe keyctl');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Seccomp:\s+2\nkeyctl EPERM/);
    assert.ok(readFileSync(path).equals(good), 'rebuilt and stored again');
  });

  test('a non-root user: the filter is loaded before the identity changes (no no_new_privs needed), no capabilities', async () => {
    for (const extra of [[], ['--security-opt', 'no-new-privileges']]) {
      const r = await run(...extra, '-u', '1000', image, 'cat', '/proc/self/status');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(status(r.stdout, 'Seccomp'), '2');
      assert.equal(status(r.stdout, 'NoNewPrivs'), extra.length ? '1' : '0');
      assert.equal(status(r.stdout, 'CapEff'), '0000000000000000');
      assert.equal(status(r.stdout, 'CapBnd'), '00000000a80425fb');
    }
  });

  test("docker's masked paths read empty, its read-only paths cannot be written; --privileged has neither", async () => {
    const masked = maskedPaths().filter((p) => existsSync(p));
    const readonly = READONLY_PATHS.filter((p) => existsSync(p));
    assert.ok(masked.length >= 3 && readonly.includes('/proc/sys'), `host has ${masked.join(' ')}`);
    const script = [
      ...masked.map((p) => (statSync(p).isDirectory() ? `echo "${p} $(ls -A ${p} | wc -l)"` : `echo "${p} $(cat ${p} | wc -c)"`)),
      'echo x > /proc/sys/kernel/domainname',
      ...(existsSync('/proc/sysrq-trigger') ? ['echo h > /proc/sysrq-trigger'] : []),
      'cat /proc/mounts',
    ].join('; ');
    const r = await run(image, 'sh', '-c', script);
    assert.equal(r.code, 0, r.stderr);
    for (const p of masked) assert.match(r.stdout, new RegExp(`^${p} 0$`, 'm'), `${p} is masked`);
    assert.match(r.stderr, /can't create \/proc\/sys\/kernel\/domainname: Read-only file system/);
    if (existsSync('/proc/sysrq-trigger')) assert.match(r.stderr, /sysrq-trigger: Read-only file system/);
    const mounts = r.stdout.split('\n').filter((l) => /^\S+ \/(proc|sys)\//.test(l));
    for (const p of readonly) assert.ok(mounts.some((l) => l.split(' ')[1] === p && l.split(' ')[3]!.startsWith('ro,')), `${p} read-only: ${mounts.join('\n')}`);
    for (const p of masked) assert.ok(mounts.some((l) => l.split(' ')[1] === p), `${p} covered`);

    const host = masked.filter((p) => !statSync(p).isDirectory() && readFileSync(p).length > 0);
    const priv = await run('--privileged', image, 'sh', '-c', `${host.map((p) => `echo "${p} $(cat ${p} | wc -c)"`).join('; ')}; cat /proc/mounts`);
    assert.equal(priv.code, 0, priv.stderr);
    for (const p of host) assert.doesNotMatch(priv.stdout, new RegExp(`^${p} 0$`, 'm'), `${p} readable with --privileged`);
    assert.ok(!priv.stdout.split('\n').some((l) => /^\S+ \/(proc|sys)\/\S/.test(l)), 'nothing mounted below /proc or /sys');
    assert.match(priv.stdout, /^sysfs \/sys sysfs rw,/m);
  });

  test('--privileged: every capability berth has, no seccomp, mount and unshare -U work', async () => {
    const r = await run('--privileged', image, 'sh', '-c', 'cat /proc/self/status; probe mount keyctl unshare-user clone3');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(status(r.stdout, 'Seccomp'), '0');
    assert.equal(status(r.stdout, 'CapEff'), hostCapBnd());
    const p = probeResults(r.stdout.slice(r.stdout.indexOf('mount ')));
    assert.equal(p.mount, 'ok');
    assert.equal(p['unshare-user'], 'ok');
    assert.notEqual(p.keyctl, 'EPERM');
    assert.notEqual(p.clone3, 'ENOSYS');
  });

  test('--cap-drop ALL: chown fails; --cap-drop chown too; --cap-add SYS_ADMIN: the profile then allows mount, as docker\'s', async () => {
    const none = await run('--cap-drop', 'ALL', image, 'sh', '-c', 'grep CapEff /proc/self/status; chown 1 /tmp');
    assert.notEqual(none.code, 0);
    assert.match(none.stdout, /CapEff:\s+0000000000000000/);
    assert.match(none.stderr, /chown: \/tmp: Operation not permitted/);
    const noChown = await run('--cap-drop', 'chown', image, 'chown', '1', '/tmp');
    assert.match(noChown.stderr, /Operation not permitted/);
    assert.equal((await run(image, 'chown', '1', '/tmp')).code, 0);

    const admin = await run('--cap-add', 'sys_admin', image, 'sh', '-c', 'grep CapEff /proc/self/status; probe mount clone3; mount -t tmpfs x /tmp && echo busybox-mount-ok');
    assert.equal(admin.code, 0, admin.stderr);
    assert.match(admin.stdout, /CapEff:\s+00000000a82425fb/); // + bit 21
    assert.match(admin.stdout, /^mount ok$/m);
    assert.doesNotMatch(admin.stdout, /^clone3 ENOSYS$/m); // the CAP_SYS_ADMIN rule allows clone3
    assert.match(admin.stdout, /busybox-mount-ok/);
    // ALL but one
    const all = await run('--cap-add', 'ALL', '--cap-drop', 'CAP_SYS_ADMIN', image, 'sh', '-c', 'grep CapEff /proc/self/status; probe mount');
    assert.equal(status(all.stdout, 'CapEff'), (BigInt(`0x${hostCapBnd()}`) & ~(1n << 21n)).toString(16).padStart(16, '0'));
    assert.match(all.stdout, /^mount EPERM$/m);
  });

  test('--security-opt seccomp=unconfined, a profile file, builtin; no-new-privileges in its forms', async () => {
    const unconfined = await run('--security-opt', 'seccomp=unconfined', image, 'sh', '-c', 'grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status; probe keyctl');
    assert.equal(status(unconfined.stdout, 'Seccomp'), '0');
    assert.doesNotMatch(unconfined.stdout, /keyctl EPERM/);
    const builtin = await run('--security-opt', 'seccomp=builtin', image, 'grep', 'Seccomp:', '/proc/self/status');
    assert.match(builtin.stdout, /Seccomp:\s+2/);

    // docker's format: allow everything but mkdir/mkdirat (EPERM), with a caps-gated rule that
    // does not apply (no CAP_SYS_TIME) and an arch-gated one that does.
    const profile: SeccompProfile = {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 },
        { names: ['rmdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, includes: { caps: ['CAP_SYS_TIME'] } },
        { names: ['symlink', 'symlinkat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, includes: { arches: ['amd64', 'arm64'] } },
      ],
    };
    await writeFile(join(dir, 'no-mkdir.json'), JSON.stringify(profile, null, 2));
    const custom = await run('--security-opt', `seccomp=${join(dir, 'no-mkdir.json')}`, image, 'sh', '-c', 'mkdir /tmp/a; mkdir /tmp/b 2>/dev/null; rmdir /tmp/b; ln -s x /tmp/l; echo done');
    assert.equal(custom.code, 0, custom.stderr);
    assert.match(custom.stderr, /mkdir: can't create directory '\/tmp\/a': Operation not permitted/);
    assert.match(custom.stderr, /rmdir: '\/tmp\/b': No such file or directory/); // rmdir allowed (its rule needs CAP_SYS_TIME)
    assert.match(custom.stderr, /ln: \/tmp\/l: Permission denied/); // errnoRet 13
    assert.equal(custom.stdout, 'done\n');

    for (const opt of ['no-new-privileges', 'no-new-privileges:true', 'no-new-privileges=true']) {
      const r = await run('--security-opt', opt, image, 'grep', 'NoNewPrivs', '/proc/self/status');
      assert.match(r.stdout, /NoNewPrivs:\s+1/, opt);
    }
    assert.match((await run('--security-opt', 'no-new-privileges=false', image, 'grep', 'NoNewPrivs', '/proc/self/status')).stdout, /NoNewPrivs:\s+0/);
  });

  test("bad --security-opt, --cap-add and profile files: docker's messages, exit 125", async () => {
    const cases: [string[], RegExp][] = [
      [['--security-opt', 'foo=bar'], /invalid --security-opt 2: "foo=bar"/],
      [['--security-opt', 'foo'], /Invalid --security-opt: "foo"/],
      [['--security-opt', 'no-new-privileges=maybe'], /invalid --security-opt 2: "no-new-privileges=maybe"/],
      [['--security-opt', `seccomp=${join(dir, 'missing.json')}`], /opening seccomp profile \(.*missing\.json\) failed: .*no such file or directory/],
      [['--cap-add', 'FOO'], /invalid CapAdd: unknown capability: "CAP_FOO"/],
      [['--cap-drop', 'nope'], /invalid CapDrop: unknown capability: "CAP_NOPE"/],
    ];
    for (const [flags, message] of cases) {
      const r = await run(...flags, image, 'true');
      assert.equal(r.code, 125, flags.join(' '));
      assert.match(r.stderr, message);
    }
  });

  test('inspect shows HostConfig.Privileged, CapAdd, CapDrop, SecurityOpt as docker; exec gets the container\'s confinement', async () => {
    const d = await berth(['run', '-d', '--name', 'confined', '--cap-add', 'sys_admin', '--cap-add', 'NET_ADMIN', '--cap-drop', 'chown', '--security-opt', 'no-new-privileges', image, 'sleep', '30']);
    assert.equal(d.code, 0, d.stderr);
    try {
      const info = JSON.parse((await berth(['inspect', 'confined'])).stdout) as { HostConfig: Record<string, unknown> }[];
      const h = info[0]!.HostConfig;
      assert.deepEqual([h.Privileged, h.CapAdd, h.CapDrop, h.SecurityOpt], [false, ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN'], ['CAP_CHOWN'], ['no-new-privileges']]);
      const e = await berth(['exec', 'confined', 'grep', '-E', '^(CapEff|Seccomp|NoNewPrivs):', '/proc/self/status']);
      assert.equal(e.code, 0, e.stderr);
      assert.equal(status(e.stdout, 'Seccomp'), '2');
      assert.equal(status(e.stdout, 'NoNewPrivs'), '1');
      assert.equal(status(e.stdout, 'CapEff'), '00000000a82435fa'); // default - CHOWN (bit 0) + NET_ADMIN (12) + SYS_ADMIN (21)
      const ex = await berth(['exec', 'confined', 'probe', 'mount', 'keyctl']);
      assert.deepEqual(probeResults(ex.stdout), { mount: 'ok', keyctl: 'EPERM' });
      // exec --privileged: every capability, the container's seccomp filter still (as runc's exec)
      const xp = await berth(['exec', '--privileged', 'confined', 'grep', '-E', '^(CapEff|Seccomp):', '/proc/self/status']);
      assert.equal(status(xp.stdout, 'CapEff'), hostCapBnd());
      assert.equal(status(xp.stdout, 'Seccomp'), '2');
    } finally {
      await berth(['rm', '-f', 'confined']);
    }
    const plain = await berth(['run', '--name', 'plain', image, 'true']);
    assert.equal(plain.code, 0, plain.stderr);
    const info = JSON.parse((await berth(['inspect', 'plain'])).stdout) as { HostConfig: Record<string, unknown> }[];
    assert.deepEqual([info[0]!.HostConfig.Privileged, info[0]!.HostConfig.CapAdd, info[0]!.HostConfig.CapDrop, info[0]!.HostConfig.SecurityOpt], [false, null, null, null]);
    await berth(['rm', 'plain']);
  });
});

// ---- the profile, without containers ----

/** What a resolved profile does with one syscall: "deny:ERRNO", "allow", or its conditional rules. */
function outcome(p: ResolvedSeccomp, name: string): string {
  const rules = p.syscalls.filter((r) => r.names.includes(name));
  if (rules.length === 0) return `deny:${p.defaultErrnoRet ?? 1}`;
  const parts = rules.map((r) => {
    const act = r.action === 'SCMP_ACT_ALLOW' ? 'allow' : `deny:${r.errnoRet ?? 1}`;
    return r.args.length ? `${act} if ${r.args.map((a) => `arg${a.index} ${a.op.replace('SCMP_CMP_', '')} ${a.value}`).join(' && ')}` : act;
  });
  return [...new Set(parts)].sort().join(' | ');
}

/**
 * containers-common's profile (podman's, Debian's golang-github-containers-common 0.50.1, 2022)
 * started as docker's and has since diverged. Every syscall where the two, resolved for docker's
 * default capabilities on amd64, do differently, with why; everything else must match.
 */
const KNOWN_DIFFERENCES: Record<string, { docker: string; podman: string; why: string }> = {};
const newer = (names: string[]) => {
  for (const n of names) KNOWN_DIFFERENCES[n] = { docker: 'allow', podman: 'deny:38', why: 'added to docker\'s profile after containers-common 0.50.1 (2022): a newer syscall' };
};
newer(['cachestat', 'fchmodat2', 'futex_requeue', 'futex_wait', 'futex_waitv', 'futex_wake', 'getxattrat', 'io_pgetevents_time64', 'listmount', 'listxattrat', 'map_shadow_stack', 'mseal', 'removexattrat', 'riscv_hwprobe', 'setxattrat', 'statmount', 'uretprobe']);
for (const n of ['io_pgetevents', 'vmsplice']) KNOWN_DIFFERENCES[n] = { docker: 'allow', podman: 'deny:1', why: 'containers-common denies it explicitly (vmsplice: CVE-2022-0847 hardening); docker allows it' };
for (const n of ['fsconfig', 'fsmount', 'fsopen', 'fspick', 'mount', 'mount_setattr', 'move_mount', 'open_tree', 'umount', 'umount2', 'unshare', 'syslog'])
  KNOWN_DIFFERENCES[n] = { docker: 'deny:1', podman: 'allow', why: 'docker allows it only with CAP_SYS_ADMIN; podman relies on the capability check in the kernel (rootless podman needs mount/unshare)' };
KNOWN_DIFFERENCES.setns = { docker: 'deny:1', podman: 'allow | deny:1', why: 'docker: CAP_SYS_ADMIN only; containers-common lists it both as allowed and denied without CAP_SYS_ADMIN' };
KNOWN_DIFFERENCES.clone = { docker: 'allow if arg0 MASKED_EQ 2114060288', podman: 'allow', why: 'docker allows clone without namespace flags unless CAP_SYS_ADMIN; podman allows every clone' };
KNOWN_DIFFERENCES.clone3 = { docker: 'deny:38', podman: 'allow', why: 'docker answers ENOSYS without CAP_SYS_ADMIN (its flags cannot be filtered) so glibc falls back to clone; podman allows it' };
KNOWN_DIFFERENCES.keyctl = { docker: 'deny:1', podman: 'allow', why: 'docker denies the kernel keyring (not namespaced); containers-common allows keyctl' };
KNOWN_DIFFERENCES.pivot_root = { docker: 'deny:1', podman: 'allow', why: 'not in docker\'s profile; podman allows it (nested containers)' };
KNOWN_DIFFERENCES.reboot = { docker: 'deny:1', podman: 'allow', why: 'docker: CAP_SYS_BOOT only; podman leaves it to the kernel (reboot in a PID namespace ends the namespace)' };
for (const n of ['get_mempolicy', 'mbind', 'set_mempolicy'])
  KNOWN_DIFFERENCES[n] = { docker: 'deny:1', podman: 'allow', why: 'docker allows the NUMA policy calls only with CAP_SYS_NICE (since 2023); podman allows them' };
KNOWN_DIFFERENCES.pidfd_getfd = { docker: 'deny:1', podman: 'allow', why: 'docker: CAP_SYS_PTRACE only; podman allows it' };
for (const n of ['readdir', 'sigaction', 'signal', 'sigpending', 'sigsuspend', 'syscall', 'timerfd'])
  KNOWN_DIFFERENCES[n] = { docker: 'deny:1', podman: 'allow', why: 'legacy 32-bit calls containers-common lists and docker does not' };
KNOWN_DIFFERENCES.socket = {
  docker: 'allow if arg0 EQ 39 | allow if arg0 GT 40 | allow if arg0 LT 38',
  podman: 'allow',
  why: 'docker refuses AF_ALG (38) and AF_VSOCK (40); podman only filters NETLINK_AUDIT without CAP_AUDIT_WRITE (which is a default capability)',
};

test("berth's default profile is docker's: compared syscall by syscall with containers-common's, differences listed", { skip: !existsSync(CONTAINERS_COMMON) && `${CONTAINERS_COMMON} missing (podman's containers-common)` }, () => {
  const berthProfile = resolveSeccomp(dockerDefaultProfile(), DEFAULT_CAPABILITIES, 'amd64', '6.1.0');
  const podman = resolveSeccomp(JSON.parse(readFileSync(CONTAINERS_COMMON, 'utf8')) as SeccompProfile, DEFAULT_CAPABILITIES, 'amd64', '6.1.0');
  // Both: SCMP_ACT_ERRNO by default, amd64 with its x86 and x32 sub-architectures.
  assert.equal(berthProfile.defaultAction, 'SCMP_ACT_ERRNO');
  assert.equal(podman.defaultAction, 'SCMP_ACT_ERRNO');
  assert.deepEqual(berthProfile.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  assert.deepEqual(podman.architectures, berthProfile.architectures);
  // The default errno differs: docker EPERM (1), containers-common ENOSYS (38), so that a program
  // probing a syscall unknown to the profile falls back (runc gives docker that for syscalls newer
  // than the profile). Syscalls neither lists are compared as "denied" only.
  assert.equal(berthProfile.defaultErrnoRet, 1);
  assert.equal(podman.defaultErrnoRet, 38);
  const names = new Set([...berthProfile.syscalls, ...podman.syscalls].flatMap((r) => r.names));
  const differences: Record<string, { docker: string; podman: string }> = {};
  let same = 0;
  for (const n of [...names].sort()) {
    const d = outcome(berthProfile, n);
    const p = outcome(podman, n);
    if (d === p) same++;
    else differences[n] = { docker: d, podman: p };
  }
  const expected = Object.fromEntries(Object.entries(KNOWN_DIFFERENCES).map(([n, v]) => [n, { docker: v.docker, podman: v.podman }]));
  assert.deepEqual(differences, expected);
  assert.ok(same > 390, `${same} syscalls handled alike`);
  // The conditional rules both share: personality's five allowed personas, arch_prctl/modify_ldt on
  // amd64, chroot with CAP_SYS_CHROOT, and what docker's default capabilities leave out.
  for (const n of ['personality', 'arch_prctl', 'modify_ldt', 'chroot', 'ptrace', 'bpf', 'init_module', 'open_by_handle_at', 'settimeofday', 'acct'])
    assert.equal(outcome(berthProfile, n), outcome(podman, n), n);
  assert.equal(outcome(berthProfile, 'personality'), 'allow if arg0 EQ 0 | allow if arg0 EQ 131072 | allow if arg0 EQ 131080 | allow if arg0 EQ 4294967295 | allow if arg0 EQ 8');
});

test('resolving for capabilities and arch: CAP_SYS_ADMIN opens mount and drops the clone flag filter; other arches\' rules stay out', () => {
  const dflt = resolveSeccomp(dockerDefaultProfile(), DEFAULT_CAPABILITIES, 'amd64', '6.1');
  const admin = resolveSeccomp(dockerDefaultProfile(), [...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'], 'amd64', '6.1');
  assert.equal(outcome(admin, 'mount'), 'allow');
  assert.equal(outcome(admin, 'clone'), 'allow');
  assert.equal(outcome(admin, 'clone3'), 'allow');
  assert.equal(outcome(dflt, 'mount'), 'deny:1');
  assert.equal(outcome(dflt, 'set_tls'), 'deny:1'); // arm only
  assert.equal(outcome(resolveSeccomp(dockerDefaultProfile(), DEFAULT_CAPABILITIES, 'arm64', '6.1'), 'set_tls'), 'allow');
  assert.equal(outcome(resolveSeccomp(dockerDefaultProfile(), DEFAULT_CAPABILITIES, 'amd64', '4.4'), 'ptrace'), 'deny:1'); // minKernel 4.8
  assert.equal(outcome(dflt, 'ptrace'), 'allow');
});

test("capability arithmetic and --security-opt parsing follow docker's CLI and daemon", () => {
  assert.deepEqual(effectiveCapAddDrop(['sys_admin', 'CAP_NET_ADMIN', ' chown '], ['chown', 'kill']), { capAdd: ['CAP_CHOWN', 'CAP_NET_ADMIN', 'CAP_SYS_ADMIN'], capDrop: ['CAP_KILL'] });
  assert.deepEqual(effectiveCapAddDrop(['all', 'chown'], ['ALL']), { capAdd: ['ALL'], capDrop: [] });
  assert.deepEqual(tweakCapabilities([], ['ALL'], false), []);
  assert.deepEqual(tweakCapabilities(['CAP_KILL'], ['ALL'], false), ['CAP_KILL']);
  assert.deepEqual(tweakCapabilities(['CAP_SYS_ADMIN'], ['CAP_CHOWN'], false), [...DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_CHOWN'), 'CAP_SYS_ADMIN']);
  assert.throws(() => tweakCapabilities(['CAP_FOO'], [], false), UsageError);
  assert.deepEqual(parseSecurityOpts(['no-new-privileges', 'seccomp=unconfined', 'apparmor=unconfined']), { noNewPrivileges: true, seccomp: 'unconfined', stored: ['no-new-privileges', 'seccomp=unconfined', 'apparmor=unconfined'] });
  assert.equal(parseSecurityOpts(['no-new-privileges:false']).noNewPrivileges, false);
  assert.throws(() => parseSecurityOpts(['seccomp=']), /Invalid --security-opt: "seccomp="/);
  assert.throws(() => parseSecurityOpts(['apparmor=docker-default']), UsageError);
  assert.throws(() => parseSecurityOpts(['label=type:foo']), UsageError);
});
