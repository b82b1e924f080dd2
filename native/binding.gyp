{
  "targets": [
    {
      "target_name": "berth_native",
      "sources": ["src/addon.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra"]
    },
    {
      "target_name": "berth-helper",
      "type": "executable",
      "sources": ["src/helper.cc"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-O2"],
      # Static: no dynamic loader work at each container start (libstdc++, libm, libc).
      "ldflags": ["-static"],
      # libseccomp builds the container's seccomp filter (Debian: libseccomp-dev). Without it the
      # helper still builds (the registry needs nothing of it) and refuses a seccomp profile at run.
      "conditions": [
        ["<!(test -f /usr/include/seccomp.h && echo 1 || echo 0)==1", {
          "defines": ["BERTH_HAVE_LIBSECCOMP"],
          "libraries": ["-lseccomp"]
        }]
      ]
    }
  ]
}
