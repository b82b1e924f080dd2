// The in-process part of native/: the few filesystem calls Node has no API for, used while
// unpacking layers (overlay whiteouts). Namespace work never happens here (see helper.cc).
#include <napi.h>

#include <errno.h>
#include <string.h>
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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("makeWhiteout", Napi::Function::New(env, MakeWhiteout));
  exports.Set("setXattr", Napi::Function::New(env, SetXattr));
  exports.Set("getXattr", Napi::Function::New(env, GetXattr));
  return exports;
}

}  // namespace

NODE_API_MODULE(berth_native, Init)
