// The in-process part of native/: the few filesystem calls Node has no API for, used while
// unpacking layers (overlay whiteouts), and a vfork-style spawn of berth-helper. Namespace work
// never happens here (see helper.cc).
#include <napi.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

extern char** environ;
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

namespace {

Napi::Error errnoError(Napi::Env env, const char* syscall, const std::string& path, int err) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + " " + path + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.Set("path", Napi::String::New(env, path));
  return e;
}

// An overlayfs whiteout: a character device 0:0 (kernel Documentation/filesystems/overlayfs.rst).
Napi::Value MakeWhiteout(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>();
  if (mknod(path.c_str(), S_IFCHR | 0, makedev(0, 0)) < 0) throw errnoError(info.Env(), "mknod", path, errno);
  return info.Env().Undefined();
}

// lsetxattr: marks opaque directories (trusted.overlay.opaque=y) and restores layer xattrs.
Napi::Value SetXattr(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>();
  std::string name = info[1].As<Napi::String>();
  Napi::Buffer<uint8_t> value = info[2].As<Napi::Buffer<uint8_t>>();
  if (lsetxattr(path.c_str(), name.c_str(), value.Data(), value.Length(), 0) < 0) throw errnoError(info.Env(), "lsetxattr", path, errno);
  return info.Env().Undefined();
}

// lgetxattr: reads an xattr (opaque directories of a container layer); undefined when absent.
Napi::Value GetXattr(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>();
  std::string name = info[1].As<Napi::String>();
  char buf[4096];
  ssize_t n = lgetxattr(path.c_str(), name.c_str(), buf, sizeof buf);
  if (n < 0) {
    if (errno == ENODATA || errno == ENOTSUP) return info.Env().Undefined();
    throw errnoError(info.Env(), "lgetxattr", path, errno);
  }
  return Napi::Buffer<uint8_t>::Copy(info.Env(), reinterpret_cast<uint8_t*>(buf), static_cast<size_t>(n));
}

// pipe2(O_CLOEXEC): [read end, write end]. The end a child gets is dup2'd onto its slot, which
// clears the flag there only.
Napi::Value Pipe(const Napi::CallbackInfo& info) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) throw errnoError(info.Env(), "pipe2", "", errno);
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, Napi::Number::New(info.Env(), fds[0]));
  out.Set(1u, Napi::Number::New(info.Env(), fds[1]));
  return out;
}

// posix_spawn(path, argv) with fds[i] on fd i (-1: /dev/null), default signal dispositions and an
// empty mask. glibc spawns with CLONE_VM|CLONE_VFORK: no copy of Node's page tables, ~1 ms where
// child_process.spawn (fork) blocks the event loop ~10 ms on the development machine.
Napi::Value Spawn(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>();
  Napi::Array args = info[1].As<Napi::Array>();
  Napi::Array fds = info[2].As<Napi::Array>();
  std::vector<std::string> argStrings{path};
  for (uint32_t i = 0; i < args.Length(); i++) argStrings.push_back(args.Get(i).As<Napi::String>());
  std::vector<char*> argv;
  for (auto& a : argStrings) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  for (uint32_t i = 0; i < fds.Length(); i++) {
    int fd = fds.Get(i).As<Napi::Number>().Int32Value();
    if (fd < 0) posix_spawn_file_actions_addopen(&actions, static_cast<int>(i), "/dev/null", O_RDWR, 0);
    else posix_spawn_file_actions_adddup2(&actions, fd, static_cast<int>(i));  // same fd: clears FD_CLOEXEC
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);  // Node ignores SIGPIPE; the container must not inherit that
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t pid;
  int err = posix_spawn(&pid, path.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err != 0) throw errnoError(info.Env(), "posix_spawn", path, err);
  return Napi::Number::New(info.Env(), pid);
}

// waitpid(pid) on a thread-pool thread; calls back (null, code, signal).
class ExitWaiter : public Napi::AsyncWorker {
 public:
  ExitWaiter(Napi::Function callback, pid_t pid) : Napi::AsyncWorker(callback), pid_(pid) {}
  void Execute() override {
    int r;
    while ((r = waitpid(pid_, &status_, 0)) < 0 && errno == EINTR) {
    }
    if (r < 0) SetError(std::string("waitpid: ") + strerror(errno));
  }
  void OnOK() override {
    Napi::Env env = Env();
    int code = WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
    int signal = WIFSIGNALED(status_) ? WTERMSIG(status_) : 0;
    Callback().Call({env.Null(), Napi::Number::New(env, code), Napi::Number::New(env, signal)});
  }

 private:
  pid_t pid_;
  int status_ = 0;
};

Napi::Value WaitExit(const Napi::CallbackInfo& info) {
  auto* worker = new ExitWaiter(info[1].As<Napi::Function>(), info[0].As<Napi::Number>().Int32Value());
  worker->Queue();
  return info.Env().Undefined();
}

// flock(fd, LOCK_EX|LOCK_NB): true when taken, false when another open file description holds it.
// Non-blocking so the event loop never waits in the kernel; the caller retries. The kernel drops
// the lock when the holder exits, so a killed process never leaves it stale.
Napi::Value TryLock(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) return Napi::Boolean::New(info.Env(), true);
  if (errno == EWOULDBLOCK || errno == EINTR) return Napi::Boolean::New(info.Env(), false);
  throw errnoError(info.Env(), "flock", std::to_string(fd), errno);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("pipe", Napi::Function::New(env, Pipe));
  exports.Set("spawn", Napi::Function::New(env, Spawn));
  exports.Set("waitExit", Napi::Function::New(env, WaitExit));
  exports.Set("makeWhiteout", Napi::Function::New(env, MakeWhiteout));
  exports.Set("setXattr", Napi::Function::New(env, SetXattr));
  exports.Set("getXattr", Napi::Function::New(env, GetXattr));
  exports.Set("tryLock", Napi::Function::New(env, TryLock));
  return exports;
}

}  // namespace

NODE_API_MODULE(berth_native, Init)
