// berth-helper: the single-threaded process that creates a container (`run`) or enters one
// (`exec`). Node is multi-threaded (libuv, V8) and namespaces are per thread, so Berth never calls
// clone/unshare/setns in the Node process itself: the same reason runc runs nsexec.c before Go.
//
//   berth-helper run   <config on fd 3, JSON>   [status fd 4]
//   berth-helper exec  <config on fd 3, JSON>   [status fd 4]
//
// Status fd (when open): one JSON line `{"pid":N}` once the process has been exec'd, or
// `{"error":"...","code":C}` if it could not be. Without fd 4 errors go to stderr as "berth: ...".
// The helper stays the parent of the container's init, forwards signals to it, and exits with its
// status: the process's code, 128+signal, 125 for a setup error, 126/127 for exec errors (docker's).
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <poll.h>
#include <termios.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <linux/filter.h>
#include <linux/seccomp.h>
#ifdef BERTH_HAVE_LIBSECCOMP
#include <seccomp.h>
#endif
#include <sys/mman.h>

#include <string>
#include <vector>

#include "json.h"

using berth::Json;

namespace {

const int CONFIG_FD = 3;
const int STATUS_FD = 4;

// A setup failure inside the child: carries docker's exit code and a "syscall path: strerror" text.
struct Failure {
  int code;
  std::string message;
};

[[noreturn]] void fail(int code, const std::string& what, int err) {
  throw Failure{code, what + ": " + strerror(err)};
}
void check(int rc, const std::string& what) {
  if (rc < 0) fail(125, what, errno);
}

std::string jsonEscape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// The status fd, moved above the low numbers at start-up so later pipes cannot take its number.
int g_statusFd = -1;

bool statusOpen() { return g_statusFd >= 0; }

void closeStatus() {
  if (g_statusFd >= 0) close(g_statusFd);
  g_statusFd = -1;
}

void writeAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

void report(const std::string& line) {
  if (statusOpen()) writeAll(g_statusFd, line + "\n");
}

[[noreturn]] void reportFailureAndExit(int code, const std::string& message) {
  if (statusOpen()) {
    report("{\"error\":\"" + jsonEscape(message) + "\",\"code\":" + std::to_string(code) + "}");
  } else {
    writeAll(2, "berth: " + message + "\n");
  }
  _exit(code);
}

std::string readAll(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void writeFile(const std::string& path, const std::string& content) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) fail(125, "open " + path, errno);
  ssize_t n = write(fd, content.data(), content.size());
  int err = errno;
  close(fd);
  if (n < 0) fail(125, "write " + path, err);
}

// mkdir -p below `root`, refusing to walk through symlinks: a path from the image must not lead
// out of the rootfs (the image controls what is there).
void mkdirInside(const std::string& root, const std::string& rel, mode_t mode = 0755) {
  std::string cur = root;
  size_t i = 0;
  while (i < rel.size()) {
    size_t j = rel.find('/', i);
    if (j == std::string::npos) j = rel.size();
    std::string part = rel.substr(i, j - i);
    i = j + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") fail(125, "mount target " + rel, EINVAL);
    cur += "/" + part;
    struct stat st;
    if (lstat(cur.c_str(), &st) == 0) {
      if (S_ISLNK(st.st_mode)) fail(125, "mount target " + cur + " is a symlink", ELOOP);
      continue;
    }
    if (mkdir(cur.c_str(), mode) < 0 && errno != EEXIST) fail(125, "mkdir " + cur, errno);
  }
}

void ensureFileInside(const std::string& root, const std::string& rel) {
  size_t slash = rel.rfind('/');
  if (slash != std::string::npos && slash > 0) mkdirInside(root, rel.substr(0, slash));
  std::string path = root + "/" + rel;
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (S_ISLNK(st.st_mode)) fail(125, "mount target " + path + " is a symlink", ELOOP);
    return;
  }
  int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) fail(125, "create " + path, errno);
  close(fd);
}

void mountOrFail(const char* src, const std::string& target, const char* type, unsigned long flags, const char* data) {
  if (mount(src, target.c_str(), type, flags, data) < 0) fail(125, std::string("mount ") + (type ? type : src) + " " + target, errno);
}

// A minimal /dev, as runc/docker create it (runtime-spec config-linux.md "Default Devices").
void setupDev(const std::string& root) {
  std::string dev = root + "/dev";
  mkdirInside(root, "dev");
  mountOrFail("tmpfs", dev, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
  struct Node {
    const char* name;
    unsigned maj, min;
  } nodes[] = {{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
  for (const auto& n : nodes) {
    std::string p = dev + "/" + n.name;
    if (mknod(p.c_str(), S_IFCHR | 0666, makedev(n.maj, n.min)) < 0) fail(125, "mknod " + p, errno);
    chmod(p.c_str(), 0666);  // mknod honours the umask
  }
  mkdir((dev + "/pts").c_str(), 0755);
  mountOrFail("devpts", dev + "/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5");
  check(symlink("pts/ptmx", (dev + "/ptmx").c_str()), "symlink " + dev + "/ptmx");
  mkdir((dev + "/shm").c_str(), 01777);
  mountOrFail("shm", dev + "/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k");
  mkdir((dev + "/mqueue").c_str(), 0755);
  mountOrFail("mqueue", dev + "/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  const char* links[][2] = {{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}};
  for (auto& l : links) check(symlink(l[0], (dev + "/" + l[1]).c_str()), std::string("symlink /dev/") + l[1]);
}

// Masked and read-only paths (runtime-spec config-linux.md maskedPaths / readonlyPaths), as runc
// applies them: a file is covered by /dev/null, a directory by an empty read-only tmpfs; a read-only
// path is bind-mounted onto itself and remounted read-only. A path this kernel lacks is skipped.
// /proc and /sys are fresh kernel mounts here, so no path below them is the image's symlink.
void maskPaths(const std::string& root, const Json& paths) {
  std::string devNull = root + "/dev/null";
  for (const auto& m : paths.a) {
    std::string p = root + m.s;
    if (mount(devNull.c_str(), p.c_str(), nullptr, MS_BIND, nullptr) == 0 || errno == ENOENT) continue;
    if (errno != ENOTDIR) fail(125, "mask " + m.s, errno);
    mountOrFail("tmpfs", p, "tmpfs", MS_RDONLY, nullptr);
  }
}

// Docker's lists, for a configuration written before berth sent them (containers created earlier).
Json orDefault(const Json& v, const char* const* defaults, size_t n) {
  if (!v.isNull()) return v;
  Json list;
  list.kind = Json::Array;
  for (size_t i = 0; i < n; i++) {
    Json s;
    s.kind = Json::String;
    s.s = defaults[i];
    list.a.push_back(s);
  }
  return list;
}
const char* const DEFAULT_MASKED[] = {"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                                      "/proc/sched_debug", "/proc/scsi", "/proc/timer_list", "/proc/timer_stats",
                                      "/sys/devices/virtual/powercap", "/sys/firmware"};
const char* const DEFAULT_READONLY[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"};

void readonlyPaths(const std::string& root, const Json& paths) {
  for (const auto& r : paths.a) {
    std::string p = root + r.s;
    if (mount(p.c_str(), p.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0) {
      if (errno == ENOENT) continue;
      fail(125, "bind " + r.s, errno);
    }
    struct statfs sfs;
    check(statfs(p.c_str(), &sfs), "statfs " + r.s);
    unsigned long keep = static_cast<unsigned long>(sfs.f_flags) & (MS_NOSUID | MS_NODEV | MS_NOEXEC);
    mountOrFail(p.c_str(), p, nullptr, keep | MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr);
  }
}

void bindMounts(const std::string& root, const Json& mounts) {
  for (const auto& m : mounts.a) {
    std::string src = m["source"].str(), dst = m["target"].str();
    struct stat st;
    if (stat(src.c_str(), &st) < 0) fail(125, "bind source " + src, errno);
    if (S_ISDIR(st.st_mode)) mkdirInside(root, dst);
    else ensureFileInside(root, dst);
    std::string target = root + dst;
    mountOrFail(src.c_str(), target, nullptr, MS_BIND | MS_REC, nullptr);
    if (m["readonly"].truthy()) mountOrFail(src.c_str(), target, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr);
  }
}

void loopbackUp() {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) fail(125, "socket", errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
      int err = errno;
      close(s);
      fail(125, "bring up lo", err);
    }
  }
  close(s);
}

// The container's ends of its veth pairs (made in its namespace by the hooks, before it was
// released): address, netmask and up, then the default route, with the same ioctls as lo. Done
// here rather than by `nsenter ip` from the host: two processes fewer per start.
void setInet(int s, unsigned long request, const std::string& name, in_addr_t address, const char* what) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  struct sockaddr_in* sin = reinterpret_cast<struct sockaddr_in*>(&ifr.ifr_addr);
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = address;
  if (ioctl(s, request, &ifr) < 0) fail(125, std::string(what) + " " + name, errno);
}

void configureInterfaces(const Json& interfaces, const std::string& gateway) {
  if (interfaces.a.empty()) return;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) fail(125, "socket", errno);
  for (const auto& i : interfaces.a) {
    std::string name = i["name"].str(), address = i["address"].str();
    long prefix = i["prefix"].num(-1);
    struct in_addr a;
    if (name.empty() || name.size() >= IFNAMSIZ || inet_pton(AF_INET, address.c_str(), &a) != 1 || prefix < 0 || prefix > 32) fail(125, "interface " + name + " " + address, EINVAL);
    setInet(s, SIOCSIFADDR, name, a.s_addr, "set address of");
    setInet(s, SIOCSIFNETMASK, name, htonl(prefix == 0 ? 0 : ~0u << (32 - prefix)), "set netmask of");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) fail(125, "get flags of " + name, errno);
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) fail(125, "bring up " + name, errno);
  }
  if (!gateway.empty()) {
    struct rtentry rt;
    memset(&rt, 0, sizeof rt);
    struct sockaddr_in* dst = reinterpret_cast<struct sockaddr_in*>(&rt.rt_dst);
    struct sockaddr_in* mask = reinterpret_cast<struct sockaddr_in*>(&rt.rt_genmask);
    struct sockaddr_in* gw = reinterpret_cast<struct sockaddr_in*>(&rt.rt_gateway);
    dst->sin_family = mask->sin_family = gw->sin_family = AF_INET;
    if (inet_pton(AF_INET, gateway.c_str(), &gw->sin_addr) != 1) fail(125, "gateway " + gateway, EINVAL);
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    if (ioctl(s, SIOCADDRT, &rt) < 0) fail(125, "default route via " + gateway, errno);
  }
  close(s);
}

struct Identity {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  std::string home = "/";
};

bool allDigits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

std::vector<std::vector<std::string>> readColonFile(const char* path) {
  std::vector<std::vector<std::string>> rows;
  FILE* f = fopen(path, "re");
  if (!f) return rows;
  char* line = nullptr;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, f)) > 0) {
    std::string l(line, static_cast<size_t>(n));
    while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.pop_back();
    if (l.empty() || l[0] == '#') continue;
    std::vector<std::string> fields;
    size_t i = 0;
    for (;;) {
      size_t j = l.find(':', i);
      fields.push_back(l.substr(i, j == std::string::npos ? std::string::npos : j - i));
      if (j == std::string::npos) break;
      i = j + 1;
    }
    rows.push_back(fields);
  }
  free(line);
  fclose(f);
  return rows;
}

// `user` is "name", "uid", "name:group" or "uid:gid", resolved in the container's /etc/passwd and
// /etc/group as docker does (a numeric uid absent from passwd is allowed; a name must exist).
Identity resolveUser(const std::string& user) {
  Identity id;
  std::string u = user, g;
  size_t colon = user.find(':');
  if (colon != std::string::npos) {
    u = user.substr(0, colon);
    g = user.substr(colon + 1);
  }
  if (u.empty()) u = "0";
  auto passwd = readColonFile("/etc/passwd");
  auto groups = readColonFile("/etc/group");
  bool found = false;
  std::string userName;
  for (const auto& p : passwd) {
    if (p.size() < 4) continue;
    if ((allDigits(u) && p[2] == u) || p[0] == u) {
      userName = p[0];
      id.uid = static_cast<uid_t>(strtoul(p[2].c_str(), nullptr, 10));
      id.gid = static_cast<gid_t>(strtoul(p[3].c_str(), nullptr, 10));
      if (p.size() >= 6 && !p[5].empty()) id.home = p[5];
      found = true;
      break;
    }
  }
  if (!found) {
    if (!allDigits(u)) throw Failure{126, "unable to find user " + u + ": no matching entries in passwd file"};
    id.uid = static_cast<uid_t>(strtoul(u.c_str(), nullptr, 10));
    id.gid = 0;
  }
  if (!g.empty()) {
    bool gfound = false;
    for (const auto& gr : groups) {
      if (gr.size() < 3) continue;
      if ((allDigits(g) && gr[2] == g) || gr[0] == g) {
        id.gid = static_cast<gid_t>(strtoul(gr[2].c_str(), nullptr, 10));
        gfound = true;
        break;
      }
    }
    if (!gfound) {
      if (!allDigits(g)) throw Failure{126, "unable to find group " + g + ": no matching entries in group file"};
      id.gid = static_cast<gid_t>(strtoul(g.c_str(), nullptr, 10));
    }
  } else if (!userName.empty()) {
    // Supplementary groups as initgroups(3) makes them: the primary group and those listing the user.
    id.groups.push_back(id.gid);
    for (const auto& gr : groups) {
      if (gr.size() < 4) continue;
      std::string members = gr[3];
      size_t i = 0;
      while (i <= members.size()) {
        size_t j = members.find(',', i);
        if (j == std::string::npos) j = members.size();
        if (members.substr(i, j - i) == userName) id.groups.push_back(static_cast<gid_t>(strtoul(gr[2].c_str(), nullptr, 10)));
        i = j + 1;
      }
    }
  }
  return id;
}

// Docker's default capability set (moby oci/caps/defaults.go): for a configuration without a
// "capabilities" list (containers created before berth had --cap-add/--cap-drop).
const int DEFAULT_CAPS[] = {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER, CAP_MKNOD, CAP_NET_RAW, CAP_SETGID,
                            CAP_SETUID, CAP_SETFCAP, CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_KILL, CAP_AUDIT_WRITE};

std::vector<int> capabilityList(const Json& cfg) {
  std::vector<int> caps;
  if (cfg["capabilities"].kind == Json::Array) {
    for (const auto& c : cfg["capabilities"].a) caps.push_back(static_cast<int>(c.num(-1)));
  } else {
    caps.assign(std::begin(DEFAULT_CAPS), std::end(DEFAULT_CAPS));
  }
  return caps;
}

bool hasCap(const std::vector<int>& caps, int cap) {
  for (int c : caps)
    if (c == cap) return true;
  return false;
}

void dropBoundingSet(const std::vector<int>& caps) {
  for (int cap = 0; cap <= 63; cap++) {
    if (hasCap(caps, cap)) continue;
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0) break;  // past the kernel's last capability
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) fail(125, "prctl PR_CAPBSET_DROP " + std::to_string(cap), errno);
  }
}

// Root gets the set as effective and permitted; another user none (docker without ambient caps).
// Inheritable stays empty, as docker's since 20.10.14 (CVE-2022-24769).
void setCapabilities(const std::vector<int>& caps, bool root) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (root) {
    for (int c : caps) {
      if (c < 0 || c > 63) continue;
      data[c / 32].effective |= 1u << (c % 32);
      data[c / 32].permitted |= 1u << (c % 32);
    }
  }
  if (syscall(SYS_capset, &hdr, data) < 0) fail(125, "capset", errno);
}

#ifdef BERTH_HAVE_LIBSECCOMP
// ---- seccomp: the profile comes resolved (runtime/confinement.ts): architectures, rules that
// apply to this container's capabilities and architecture. Built and loaded as runc does
// (libcontainer/seccomp/seccomp_linux.go), with libseccomp.

uint32_t seccompAction(const std::string& name, const Json& errnoRet, const std::string& where) {
  // runc: ERRNO without errnoRet is EPERM; TRACE without it, EPERM too.
  long ret = errnoRet.kind == Json::Number ? errnoRet.num() : EPERM;
  if (name == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (name == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(static_cast<uint16_t>(ret));
  if (name == "SCMP_ACT_KILL" || name == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
  if (name == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (name == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (name == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(static_cast<uint16_t>(ret));
  if (name == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  throw Failure{125, "seccomp: unknown action " + name + " in " + where};
}

uint32_t seccompArch(const std::string& name) {
  static const struct {
    const char* name;
    uint32_t arch;
  } arches[] = {{"SCMP_ARCH_X86", SCMP_ARCH_X86}, {"SCMP_ARCH_X86_64", SCMP_ARCH_X86_64}, {"SCMP_ARCH_X32", SCMP_ARCH_X32},
                {"SCMP_ARCH_ARM", SCMP_ARCH_ARM}, {"SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64}, {"SCMP_ARCH_MIPS", SCMP_ARCH_MIPS},
                {"SCMP_ARCH_MIPS64", SCMP_ARCH_MIPS64}, {"SCMP_ARCH_MIPS64N32", SCMP_ARCH_MIPS64N32},
                {"SCMP_ARCH_MIPSEL", SCMP_ARCH_MIPSEL}, {"SCMP_ARCH_MIPSEL64", SCMP_ARCH_MIPSEL64},
                {"SCMP_ARCH_MIPSEL64N32", SCMP_ARCH_MIPSEL64N32}, {"SCMP_ARCH_PPC", SCMP_ARCH_PPC},
                {"SCMP_ARCH_PPC64", SCMP_ARCH_PPC64}, {"SCMP_ARCH_PPC64LE", SCMP_ARCH_PPC64LE},
                {"SCMP_ARCH_S390", SCMP_ARCH_S390}, {"SCMP_ARCH_S390X", SCMP_ARCH_S390X},
#ifdef SCMP_ARCH_RISCV64
                {"SCMP_ARCH_RISCV64", SCMP_ARCH_RISCV64},
#endif
  };
  for (const auto& a : arches)
    if (name == a.name) return a.arch;
  return 0;
}

scmp_compare seccompOp(const std::string& op) {
  if (op == "SCMP_CMP_NE") return SCMP_CMP_NE;
  if (op == "SCMP_CMP_LT") return SCMP_CMP_LT;
  if (op == "SCMP_CMP_LE") return SCMP_CMP_LE;
  if (op == "SCMP_CMP_EQ") return SCMP_CMP_EQ;
  if (op == "SCMP_CMP_GE") return SCMP_CMP_GE;
  if (op == "SCMP_CMP_GT") return SCMP_CMP_GT;
  if (op == "SCMP_CMP_MASKED_EQ") return SCMP_CMP_MASKED_EQ;
  throw Failure{125, "seccomp: unknown operator " + op};
}

uint64_t u64(const Json& v) { return v.kind == Json::Number ? static_cast<uint64_t>(v.n) : 0; }

// The BPF program libseccomp generates for the profile (what seccomp_load would load).
std::string buildSeccompFilter(const Json& profile) {
  uint32_t defaultAction = seccompAction(profile["defaultAction"].str(), profile["defaultErrnoRet"], "defaultAction");
  scmp_filter_ctx ctx = seccomp_init(defaultAction);
  if (!ctx) throw Failure{125, "seccomp_init failed"};
  struct Guard {
    scmp_filter_ctx c;
    ~Guard() { seccomp_release(c); }
  } guard{ctx};
  // no_new_privs is the configuration's business (docker sets it only when asked), not libseccomp's.
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  if (rc < 0) fail(125, "seccomp_attr_set NNP", -rc);
  for (const auto& a : profile["architectures"].a) {
    uint32_t arch = seccompArch(a.s);
    if (arch == 0) throw Failure{125, "seccomp: unknown architecture " + a.s};
    rc = seccomp_arch_add(ctx, arch);
    if (rc < 0 && rc != -EEXIST) fail(125, "seccomp_arch_add " + a.s, -rc);
  }
  for (const auto& rule : profile["syscalls"].a) {
    uint32_t action = seccompAction(rule["action"].str(), rule["errnoRet"], "a rule");
    if (action == defaultAction) continue;  // libseccomp refuses a rule that changes nothing (runc skips it)
    std::vector<scmp_arg_cmp> conds;
    bool sameIndexTwice = false;
    for (const auto& arg : rule["args"].a) {
      scmp_arg_cmp c;
      c.arg = static_cast<unsigned>(arg["index"].num());
      c.op = seccompOp(arg["op"].str());
      c.datum_a = u64(arg["value"]);
      c.datum_b = u64(arg["valueTwo"]);
      for (const auto& prev : conds)
        if (prev.arg == c.arg) sameIndexTwice = true;
      conds.push_back(c);
    }
    for (const auto& n : rule["names"].a) {
      int nr = seccomp_syscall_resolve_name(n.s.c_str());
      if (nr == __NR_SCMP_ERROR) continue;  // unknown to this libseccomp: skipped, as runc does
      if (sameIndexTwice) {
        // libseccomp cannot AND two comparisons of one argument: one rule each (runc's way).
        for (const auto& c : conds) {
          rc = seccomp_rule_add_array(ctx, action, nr, 1, &c);
          if (rc < 0) fail(125, "seccomp rule " + n.s, -rc);
        }
        continue;
      }
      rc = seccomp_rule_add_array(ctx, action, nr, static_cast<unsigned>(conds.size()), conds.data());
      if (rc < 0) fail(125, "seccomp rule " + n.s, -rc);
    }
  }
  int fd = static_cast<int>(syscall(SYS_memfd_create, "seccomp", MFD_CLOEXEC));
  if (fd < 0) fail(125, "memfd_create", errno);
  rc = seccomp_export_bpf(ctx, fd);
  if (rc < 0) {
    close(fd);
    fail(125, "seccomp_export_bpf", -rc);
  }
  lseek(fd, 0, SEEK_SET);
  std::string bpf = readAll(fd);
  close(fd);
  return bpf;
}

// FNV-1a, to tell a cached filter from a damaged file.
uint64_t fnv1a(const std::string& s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}
#endif  // BERTH_HAVE_LIBSECCOMP

// Generating the filter (three architectures on amd64: x86_64, x86, x32) takes libseccomp ~10 ms
// per start, so it is made once per resolved profile and kept in `cache` (a path under
// $BERTH_ROOT named by the profile's digest; the libseccomp version is added, as a newer one may
// resolve more syscall names): the program, then its FNV-1a. Read and written by the helper on the
// host side, before the container's namespaces; written to a temp file, fsync'd and renamed.
std::string g_seccompFilter;  // the program, ready for the container's process to load

void prepareSeccomp(const Json& cfg) {
  const Json& profile = cfg["seccomp"];
  if (profile.isNull()) return;
#ifndef BERTH_HAVE_LIBSECCOMP
  // Built on a machine without libseccomp's headers: never run a container unconfined by surprise.
  throw Failure{125, "this berth was built without libseccomp, so containers cannot get the default seccomp profile: apt-get install libseccomp-dev, then npm rebuild (or run with --security-opt seccomp=unconfined)"};
#else
  std::string cache = cfg["seccompCache"].str();
  std::string path;
  if (!cache.empty()) {
    const scmp_version* v = seccomp_version();
    path = cache + "-libseccomp-" + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->micro) + ".bpf";
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      std::string data = readAll(fd);
      close(fd);
      if (data.size() > 8 && (data.size() - 8) % sizeof(struct sock_filter) == 0) {
        std::string prog = data.substr(0, data.size() - 8);
        uint64_t sum;
        memcpy(&sum, data.data() + prog.size(), 8);
        if (sum == fnv1a(prog)) {
          g_seccompFilter = prog;
          return;
        }
      }
    }
  }
  g_seccompFilter = buildSeccompFilter(profile);
  if (path.empty()) return;
  size_t slash = path.rfind('/');
  if (slash != std::string::npos) mkdir(path.substr(0, slash).c_str(), 0700);
  std::string tmp = path + "." + std::to_string(getpid()) + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return;  // no cache: next time it is built again
  uint64_t sum = fnv1a(g_seccompFilter);
  std::string data = g_seccompFilter + std::string(reinterpret_cast<const char*>(&sum), 8);
  bool ok = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()) && fsync(fd) == 0;
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) < 0) unlink(tmp.c_str());
#endif
}

// Loads the prepared filter into this process (inherited by what it execs and forks): what
// seccomp_load does, without libseccomp's no_new_privs (see buildSeccompFilter).
void loadSeccomp() {
  struct sock_fprog prog;
  prog.len = static_cast<unsigned short>(g_seccompFilter.size() / sizeof(struct sock_filter));
  prog.filter = reinterpret_cast<struct sock_filter*>(const_cast<char*>(g_seccompFilter.data()));
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) fail(125, "seccomp", errno);
}

void switchIdentity(const Identity& id) {
  if (setgroups(id.groups.size(), id.groups.data()) < 0) fail(125, "setgroups", errno);
  if (setresgid(id.gid, id.gid, id.gid) < 0) fail(125, "setgid " + std::to_string(id.gid), errno);
  if (setresuid(id.uid, id.uid, id.uid) < 0) fail(125, "setuid " + std::to_string(id.uid), errno);
}

void applyRlimits(const Json& rlimits) {
  static const struct {
    const char* name;
    int resource;
  } names[] = {{"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC}, {"core", RLIMIT_CORE}, {"stack", RLIMIT_STACK}, {"memlock", RLIMIT_MEMLOCK}};
  for (const auto& r : rlimits.a) {
    std::string name = r["name"].str();
    for (const auto& n : names) {
      if (name != n.name) continue;
      struct rlimit rl = {static_cast<rlim_t>(r["soft"].num()), static_cast<rlim_t>(r["hard"].num())};
      if (setrlimit(n.resource, &rl) < 0) fail(125, "setrlimit " + name, errno);
    }
  }
}

std::string envLookup(const std::vector<std::string>& env, const std::string& key) {
  for (const auto& e : env)
    if (e.compare(0, key.size() + 1, key + "=") == 0) return e.substr(key.size() + 1);
  return "";
}

// PATH lookup as docker does before exec, so a missing command is a clear 127.
std::string findExecutable(const std::string& name, const std::vector<std::string>& env) {
  if (name.find('/') != std::string::npos) return name;
  std::string path = envLookup(env, "PATH");
  if (path.empty()) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  size_t i = 0;
  std::string firstDenied;
  while (i <= path.size()) {
    size_t j = path.find(':', i);
    if (j == std::string::npos) j = path.size();
    std::string dir = path.substr(i, j - i);
    i = j + 1;
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + name;
    struct stat st;
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
      if (firstDenied.empty()) firstDenied = candidate;
    }
  }
  if (!firstDenied.empty()) return firstDenied;
  throw Failure{127, "exec: \"" + name + "\": executable file not found in $PATH"};
}

// The container gets fds 0-2 only: whatever else the caller of berth leaked to us (fds without
// FD_CLOEXEC) is closed at exec, as runc does. The error pipe is CLOEXEC already.
void closeInheritedFds() {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */) == 0) return;
#endif
  for (int fd = 3; fd < 1024; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
}

[[noreturn]] void execProcess(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  if (args.empty()) throw Failure{125, "no command specified"};
  std::string file = findExecutable(args[0], env);
  std::vector<char*> argv, envp;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  closeInheritedFds();
  execve(file.c_str(), argv.data(), envp.data());
  int err = errno;
  int code = (err == ENOENT || err == ENOTDIR) ? 127 : 126;
  throw Failure{code, "exec " + file + ": " + strerror(err)};
}

volatile pid_t g_forwardTo = 0;
int g_ptyMaster = -1;  // the pty master fd with -t (see startPtyProxy)
bool g_ptyStdin = true;  // forward stdin to the pty (not for a detached container: see ttyStdin)

void forwardSignal(int sig) {
  if (g_forwardTo > 0) kill(g_forwardTo, sig);
}

void installForwarding(pid_t child) {
  g_forwardTo = child;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = forwardSignal;
  sa.sa_flags = SA_RESTART;
  int sigs[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, SIGALRM};
  for (int s : sigs) {
    if (s == SIGWINCH && g_ptyMaster >= 0) continue;  // with a pty the kernel signals the resize
    sigaction(s, &sa, nullptr);
  }
}

int statusToCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 125;
}

// Init for --init: PID 1 reaps orphans (zombies) and forwards signals to the real process, then
// exits with its status, as tini/docker-init do.
[[noreturn]] void runInit(const std::vector<std::string>& args, const std::vector<std::string>& env, int errWrite) {
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  pid_t child = fork();
  if (child < 0) fail(125, "fork", errno);
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &old, nullptr);
    try {
      execProcess(args, env);
    } catch (const Failure& f) {
      writeAll(errWrite, std::to_string(f.code) + "\n" + f.message);
      _exit(f.code);
    }
  }
  close(errWrite);
  installForwarding(child);
  sigprocmask(SIG_SETMASK, &old, nullptr);
  for (;;) {
    int status;
    pid_t p = waitpid(-1, &status, 0);
    if (p < 0 && errno == EINTR) continue;
    if (p < 0) _exit(125);
    if (p == child) _exit(statusToCode(status));
  }
}

void containerSetup(const Json& cfg) {
  std::string root = cfg["rootfs"].str();
  check(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), "mount / private");
  std::string lower;
  for (const auto& l : cfg["lower"].a) lower += (lower.empty() ? "" : ":") + l.s;
  std::string opts = "lowerdir=" + lower + ",upperdir=" + cfg["upper"].str() + ",workdir=" + cfg["work"].str();
  mountOrFail("overlay", root, "overlay", 0, opts.c_str());
  mkdirInside(root, "proc", 0555);
  mountOrFail("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  mkdirInside(root, "sys", 0555);
  // Read-only unless --privileged (docker's).
  mountOrFail("sysfs", root + "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | (cfg["privileged"].truthy() ? 0 : MS_RDONLY), nullptr);
  setupDev(root);
  maskPaths(root, orDefault(cfg["maskedPaths"], DEFAULT_MASKED, std::size(DEFAULT_MASKED)));
  readonlyPaths(root, orDefault(cfg["readonlyPaths"], DEFAULT_READONLY, std::size(DEFAULT_READONLY)));
  bindMounts(root, cfg["mounts"]);
  for (const auto& f : cfg["files"].a) {
    // Files berth writes for the container (/etc/hostname, /etc/hosts, /etc/resolv.conf).
    std::string target = f["target"].str();
    ensureFileInside(root, target);
    mountOrFail(f["source"].str().c_str(), root + target, nullptr, MS_BIND, nullptr);
  }
  // pivot_root(".", ".") then detach the old root: no put_old directory needed (runc does this).
  check(chdir(root.c_str()), "chdir " + root);
  check(static_cast<int>(syscall(SYS_pivot_root, ".", ".")), "pivot_root " + root);
  check(umount2(".", MNT_DETACH), "umount old root");
  check(chdir("/"), "chdir /");
  if (cfg["readonly"].truthy()) check(mount(nullptr, "/", nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr), "remount / read-only");
  std::string hostname = cfg["hostname"].str();
  if (!hostname.empty()) check(sethostname(hostname.c_str(), hostname.size()), "sethostname " + hostname);
  std::string network = cfg["network"].str();
  if (network != "host" && network != "container") loopbackUp();
  if (network == "bridge") configureInterfaces(cfg["interfaces"], cfg["gateway"].str());
}

// --network container:NAME: the namespace of the other container's process, opened on the host
// side before clone and checked against the inode Node read from the same /proc path, so a pid
// reused by another process since cannot make the container join a foreign namespace.
int openTargetNetns(const Json& cfg) {
  const Json& ns = cfg["netns"];
  std::string path = ns["path"].str();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) reportFailureAndExit(125, "open " + path + ": " + strerror(errno));
  struct stat st;
  if (fstat(fd, &st) < 0 || static_cast<long>(st.st_ino) != ns["inode"].num(-1)) {
    reportFailureAndExit(125, "the network namespace of the container to join changed (" + path + "): it has stopped");
  }
  return fd;
}

// Everything after namespaces are in place, for both `run` and `exec`: user, cwd, caps, exec.
[[noreturn]] void becomeProcess(const Json& cfg, int errWrite, bool allowInit) {
  std::vector<std::string> args = cfg["args"].strings();
  std::vector<std::string> env = cfg["env"].strings();
  Identity id = resolveUser(cfg["user"].str());
  if (envLookup(env, "HOME").empty()) env.push_back("HOME=" + id.home);
  std::string cwd = cfg["cwd"].str("/");
  if (chdir(cwd.c_str()) < 0) {
    if (errno != ENOENT) fail(125, "chdir " + cwd, errno);
    mkdirInside("", cwd);  // docker creates a missing WorkingDir
    if (chown(cwd.c_str(), id.uid, id.gid) < 0) fail(125, "chown " + cwd, errno);
    check(chdir(cwd.c_str()), "chdir " + cwd);
  }
  applyRlimits(cfg["rlimits"]);
  // runc's order (standard_init_linux.go): without no_new_privs the filter is loaded while the
  // helper still has CAP_SYS_ADMIN (the kernel requires one or the other), before capabilities
  // and identity change; with it, last, after no_new_privs, so the fewest calls run under it.
  // The calls made after loading it (prctl, capset, setgroups, setres[ug]id, stat, execve) are
  // all allowed by docker's profile.
  const Json& seccomp = cfg["seccomp"];
  bool nnp = cfg["noNewPrivileges"].truthy();
  if (!seccomp.isNull() && !nnp) loadSeccomp();
  std::vector<int> caps = capabilityList(cfg);
  dropBoundingSet(caps);
  // Keep permitted capabilities across setuid so root keeps its set; a non-root user gets none.
  check(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "prctl PR_SET_KEEPCAPS");
  switchIdentity(id);
  setCapabilities(caps, id.uid == 0);
  check(prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0), "prctl PR_SET_KEEPCAPS");
  if (nnp) check(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl PR_SET_NO_NEW_PRIVS");
  if (!seccomp.isNull() && nnp) loadSeccomp();
  if (allowInit && cfg["init"].truthy()) runInit(args, env, errWrite);
  execProcess(args, env);
}

// Host-side commands that need the container's pid before it runs (bridge networking: move the
// veth end into its network namespace). "{pid}" in an argument is replaced by the pid.
void runHooks(const Json& hooks, pid_t pid) {
  for (const auto& hook : hooks.a) {
    std::vector<std::string> args;
    for (const auto& a : hook.a) {
      std::string v = a.s;
      size_t at = v.find("{pid}");
      if (at != std::string::npos) v.replace(at, 5, std::to_string(pid));
      args.push_back(v);
    }
    if (args.empty()) continue;
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t p = fork();
    if (p < 0) fail(125, "fork " + args[0], errno);
    if (p == 0) {
      int devnull = open("/dev/null", O_RDWR);
      if (devnull >= 0) dup2(devnull, 1);
      execvp(argv[0], argv.data());
      _exit(127);
    }
    int status;
    while (waitpid(p, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::string cmd;
      for (const auto& a : args) cmd += (cmd.empty() ? "" : " ") + a;
      throw Failure{125, "network setup failed (exit " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)) + "): " + cmd};
    }
  }
}

void joinCgroups(const Json& cgroups, pid_t pid) {
  for (const auto& dir : cgroups.a) writeFile(dir.s + "/cgroup.procs", std::to_string(pid));
}


// -t: the container gets a pseudo-terminal; the helper copies between its own stdio and the
// master side, with the caller's terminal in raw mode (as docker's CLI does), resized on SIGWINCH.
bool g_rawSet = false;
struct termios g_savedTermios;
volatile sig_atomic_t g_winch = 0;
volatile sig_atomic_t g_chld = 0;

struct Pty {
  int master = -1;
  int slave = -1;
};

Pty openPty() {
  Pty p;
  p.master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (p.master < 0 || grantpt(p.master) < 0 || unlockpt(p.master) < 0) reportFailureAndExit(125, std::string("open pty: ") + strerror(errno));
  const char* name = ptsname(p.master);
  p.slave = name ? open(name, O_RDWR | O_NOCTTY | O_CLOEXEC) : -1;
  if (p.slave < 0) reportFailureAndExit(125, std::string("open pty slave: ") + strerror(errno));
  return p;
}

// In the container's process: the slave becomes its controlling terminal and stdio.
void attachSlave(const Pty& p) {
  if (p.slave < 0) return;
  close(p.master);
  if (setsid() < 0) fail(125, "setsid", errno);
  if (ioctl(p.slave, TIOCSCTTY, 0) < 0) fail(125, "ioctl TIOCSCTTY", errno);
  for (int fd = 0; fd <= 2; fd++)
    if (dup2(p.slave, fd) < 0) fail(125, "dup2 pty", errno);
  if (p.slave > 2) close(p.slave);
}

void copyWinsize() {
  struct winsize ws;
  if (g_ptyMaster >= 0 && ioctl(0, TIOCGWINSZ, &ws) == 0) ioctl(g_ptyMaster, TIOCSWINSZ, &ws);
}

void restoreTerminal() {
  if (g_rawSet) tcsetattr(0, TCSADRAIN, &g_savedTermios);
  g_rawSet = false;
}

void onWinch(int) { g_winch = 1; }
void onChld(int) { g_chld = 1; }

void startPtyProxy(int master) {
  g_ptyMaster = master;
  if (isatty(0) && tcgetattr(0, &g_savedTermios) == 0) {
    struct termios raw = g_savedTermios;
    cfmakeraw(&raw);
    if (tcsetattr(0, TCSADRAIN, &raw) == 0) g_rawSet = true;
  }
  copyWinsize();
  if (!isatty(0)) {
    struct winsize ws = {24, 80, 0, 0};  // no terminal to copy (detached): docker's default size
    ioctl(master, TIOCSWINSZ, &ws);
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = onWinch;
  sigaction(SIGWINCH, &sa, nullptr);
  sa.sa_handler = onChld;
  sa.sa_flags = SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, nullptr);
}

// Copies until the container's side of the terminal is closed (read EIO) or the process exits.
void runPtyProxy(pid_t child) {
  int master = g_ptyMaster;
  bool stdinOpen = g_ptyStdin;
  char buf[16384];
  for (;;) {
    if (g_winch) {
      g_winch = 0;
      copyWinsize();
    }
    struct pollfd fds[2] = {{master, POLLIN, 0}, {0, POLLIN, 0}};
    int n = poll(fds, stdinOpen ? 2 : 1, g_chld ? 50 : -1);
    if (n < 0 && errno != EINTR) break;
    if (n == 0 && g_chld) {
      siginfo_t info;
      memset(&info, 0, sizeof info);
      if (waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid != 0) break;  // exited, output drained
    }
    if (n <= 0) continue;
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = read(master, buf, sizeof buf);
      if (r <= 0) break;  // EIO: every slave fd is closed
      writeAll(1, std::string(buf, static_cast<size_t>(r)));
    }
    if (stdinOpen && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t r = read(0, buf, sizeof buf);
      if (r <= 0) {
        stdinOpen = false;
        const char eot = 4;  // end of input for the program on the terminal
        if (write(master, &eot, 1) < 0) {
        }
      } else {
        writeAll(master, std::string(buf, static_cast<size_t>(r)));
      }
    }
  }
  restoreTerminal();
}

// Parent side after the child exists: wait for "exec happened" (the CLOEXEC error pipe closes with
// nothing in it) or a failure report, then wait for the child's end and exit with its status.
[[noreturn]] void superviseChild(pid_t child, int errRead) {
  installForwarding(child);
  std::string err = readAll(errRead);
  close(errRead);
  if (!err.empty()) {
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    size_t nl = err.find('\n');
    int code = atoi(err.substr(0, nl).c_str());
    restoreTerminal();
    reportFailureAndExit(code ? code : 125, nl == std::string::npos ? err : err.substr(nl + 1));
  }
  report("{\"pid\":" + std::to_string(child) + "}");
  closeStatus();
  if (g_ptyMaster >= 0) runPtyProxy(child);
  int status;
  for (;;) {
    pid_t p = waitpid(child, &status, 0);
    if (p < 0 && errno == EINTR) continue;
    if (p < 0) _exit(125);
    break;
  }
  _exit(statusToCode(status));
}

[[noreturn]] void childFailed(int errWrite, const Failure& f) {
  writeAll(errWrite, std::to_string(f.code) + "\n" + f.message);
  _exit(f.code);
}

[[noreturn]] void cmdRun(const Json& cfg) {
  int errPipe[2], syncPipe[2];
  if (pipe2(errPipe, O_CLOEXEC) < 0 || pipe2(syncPipe, O_CLOEXEC) < 0) reportFailureAndExit(125, std::string("pipe: ") + strerror(errno));
  Pty pty;
  if (cfg["tty"].truthy()) pty = openPty();
  unsigned long flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD;
  std::string network = cfg["network"].str();
  int netnsFd = network == "container" ? openTargetNetns(cfg) : -1;
  if (network != "host" && network != "container") flags |= CLONE_NEWNET;
  // Raw clone without a stack behaves like fork, with the child continuing here as PID 1.
  pid_t child = static_cast<pid_t>(syscall(SYS_clone, flags, 0, 0, 0, 0));
  if (child < 0) reportFailureAndExit(125, std::string("clone: ") + strerror(errno));
  if (child == 0) {
    close(errPipe[0]);
    close(syncPipe[1]);
    closeStatus();
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);  // no orphaned container if the helper is killed
    char go;
    if (read(syncPipe[0], &go, 1) != 1) _exit(125);  // parent died or failed before releasing us
    close(syncPipe[0]);
    try {
      if (netnsFd >= 0) {
        check(setns(netnsFd, CLONE_NEWNET), "setns " + cfg["netns"]["path"].str());
        close(netnsFd);
      }
      attachSlave(pty);
      containerSetup(cfg);
      becomeProcess(cfg, errPipe[1], true);
    } catch (const Failure& f) {
      childFailed(errPipe[1], f);
    }
  }
  close(errPipe[1]);
  close(syncPipe[0]);
  if (netnsFd >= 0) close(netnsFd);
  if (pty.slave >= 0) {
    close(pty.slave);
    g_ptyStdin = cfg["ttyStdin"].isNull() || cfg["ttyStdin"].truthy();
    startPtyProxy(pty.master);
  }
  try {
    joinCgroups(cfg["cgroups"], child);
    runHooks(cfg["hooks"], child);
  } catch (const Failure& f) {
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    reportFailureAndExit(f.code, f.message);
  }
  if (write(syncPipe[1], "g", 1) != 1) reportFailureAndExit(125, std::string("release child: ") + strerror(errno));
  close(syncPipe[1]);
  superviseChild(child, errPipe[0]);
}

// exec: enter the namespaces of a running container's init (setns), join its cgroups, then fork so
// the new process is inside its PID namespace.
[[noreturn]] void cmdExec(const Json& cfg) {
  pid_t target = static_cast<pid_t>(cfg["pid"].num());
  const char* kinds[] = {"ipc", "uts", "net", "pid", "mnt"};
  std::vector<int> fds;
  for (auto k : kinds) {
    std::string p = "/proc/" + std::to_string(target) + "/ns/" + k;
    int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) reportFailureAndExit(125, "open " + p + ": " + strerror(errno));
    fds.push_back(fd);
  }
  try {
    joinCgroups(cfg["cgroups"], getpid());
  } catch (const Failure& f) {
    reportFailureAndExit(f.code, f.message);
  }
  for (size_t i = 0; i < fds.size(); i++) {
    if (setns(fds[i], 0) < 0) reportFailureAndExit(125, std::string("setns ") + kinds[i] + ": " + strerror(errno));
    close(fds[i]);
  }
  int errPipe[2];
  if (pipe2(errPipe, O_CLOEXEC) < 0) reportFailureAndExit(125, std::string("pipe: ") + strerror(errno));
  Pty pty;
  if (cfg["tty"].truthy()) pty = openPty();
  pid_t child = fork();
  if (child < 0) reportFailureAndExit(125, std::string("fork: ") + strerror(errno));
  if (child == 0) {
    close(errPipe[0]);
    closeStatus();
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    try {
      attachSlave(pty);
      becomeProcess(cfg, errPipe[1], false);
    } catch (const Failure& f) {
      childFailed(errPipe[1], f);
    }
  }
  close(errPipe[1]);
  if (pty.slave >= 0) {
    close(pty.slave);
    startPtyProxy(pty.master);
  }
  superviseChild(child, errPipe[0]);
}

// rootfs: run a static tool (busybox tar/stat) chrooted in a container's root filesystem, for cp
// and export. The kernel resolves every path inside that root, so absolute or `..` symlinks made
// by the container cannot lead to the host (docker's chrootarchive does the same). A running
// container is entered through its mount namespace; a stopped one gets its overlay mounted in a
// private mount namespace that disappears with this process.
[[noreturn]] void cmdRootfs(const Json& cfg) {
  try {
    std::string toolPath = cfg["tool"].str();
    // Opened before entering the container: the host's binary, exec'd by fd (execveat).
    int tool = open(toolPath.c_str(), O_RDONLY | O_CLOEXEC);
    if (tool < 0) fail(125, "open " + toolPath, errno);
    bool oneFs = cfg["oneFilesystem"].truthy();
    long pid = static_cast<long>(cfg["pid"].num());
    if (pid > 0) {
      std::string p = "/proc/" + std::to_string(pid) + "/ns/mnt";
      int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) fail(125, "open " + p, errno);
      check(setns(fd, CLONE_NEWNS), "setns " + p);  // also moves root and cwd to its root
      close(fd);
      if (oneFs) {
        // export: the root without /proc, /sys, /dev and volumes. A private copy of the mount
        // tree, the root bind-mounted (not recursively) over /dev, then chroot there.
        check(unshare(CLONE_NEWNS), "unshare mount namespace");
        check(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), "mount / private");
        mountOrFail("/", "/dev", nullptr, MS_BIND, nullptr);
        check(chroot("/dev"), "chroot /dev");
      }
    } else {
      std::string root = cfg["rootfs"].str();
      check(unshare(CLONE_NEWNS), "unshare mount namespace");
      check(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), "mount / private");
      std::string lower;
      for (const auto& l : cfg["lower"].a) lower += (lower.empty() ? "" : ":") + l.s;
      std::string opts = "lowerdir=" + lower + ",upperdir=" + cfg["upper"].str() + ",workdir=" + cfg["work"].str();
      mountOrFail("overlay", root, "overlay", 0, opts.c_str());
      if (!oneFs) bindMounts(root, cfg["mounts"]);  // cp sees volumes, as in the running container
      check(chroot(root.c_str()), "chroot " + root);
    }
    check(chdir("/"), "chdir /");
    check(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl PR_SET_NO_NEW_PRIVS");
    std::vector<std::string> args = cfg["args"].strings();
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    char pathEnv[] = "PATH=/bin";
    char* envp[] = {pathEnv, nullptr};
    syscall(SYS_execveat, tool, "", argv.data(), envp, AT_EMPTY_PATH);
    fail(125, "execveat " + toolPath, errno);
  } catch (const Failure& f) {
    reportFailureAndExit(f.code, f.message);
  }
}

// Every signal to its default action, as libuv does for child_process: glibc's posix_spawn (how
// the addon starts us) leaves its internal signals 32 and 33 ignored, and an ignored signal stays
// ignored across exec, into the container. glibc's sigaction() refuses those two: raw syscall.
void resetSignalDispositions() {
  for (int sig = 1; sig <= 64; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    unsigned long ksa[4] = {0, 0, 0, 0};  // kernel struct sigaction: SIG_DFL, no flags, empty mask
    syscall(SYS_rt_sigaction, sig, ksa, nullptr, 8);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 || (strcmp(argv[1], "run") != 0 && strcmp(argv[1], "exec") != 0 && strcmp(argv[1], "rootfs") != 0)) {
    fprintf(stderr, "usage: berth-helper run|exec|rootfs  (configuration as JSON on fd 3)\n");
    return 125;
  }
  resetSignalDispositions();
  if (fcntl(STATUS_FD, F_GETFD) >= 0) {
    g_statusFd = fcntl(STATUS_FD, F_DUPFD_CLOEXEC, 10);
    close(STATUS_FD);
  }
  std::string text = readAll(CONFIG_FD);
  close(CONFIG_FD);
  Json cfg;
  std::string error;
  if (!berth::JsonParser(text).parse(cfg, error)) reportFailureAndExit(125, error);
  if (strcmp(argv[1], "rootfs") != 0) {
    try {
      prepareSeccomp(cfg);  // on the host side: the cache lives under $BERTH_ROOT
    } catch (const Failure& f) {
      reportFailureAndExit(f.code, f.message);
    }
  }
  if (strcmp(argv[1], "run") == 0) cmdRun(cfg);
  if (strcmp(argv[1], "rootfs") == 0) cmdRootfs(cfg);
  cmdExec(cfg);
}
