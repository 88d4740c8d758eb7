{
  "targets": [
    {
      "target_name": "xlb_native",
      "sources": [
        "src/addon.cc",
        "src/errors.cc",
        "src/lock.cc",
        "src/map.cc",
        "src/netns.cc",
        "src/object.cc",
        "src/perf_reader.cc",
        "src/program.cc",
        "src/tc.cc",
        "src/tcx.cc",
        "src/xdp.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-missing-field-initializers", "-Wno-unused-parameter"],
      "libraries": ["-lbpf"]
    }
  ]
}
