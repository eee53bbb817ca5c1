{
  "targets": [
    {
      "target_name": "kvm_gmem",
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/fault_inject.cc",
        "native/owned.cc",
        "native/sigbus_guard.cc",
        "native/kvm.cc",
        "native/vm.cc",
        "native/guest_memfd.cc",
        "native/mapping.cc",
        "native/vcpu.cc",
        "native/guest_regs.cc",
        "native/guest_runner.cc",
        "native/cpu_config.cc",
        "native/page_hold.cc",
        "native/extent_map.cc",
        "native/extent_map_binding.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=9", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-O2"],
      "cflags": ["-Wall", "-Wextra"],
      # NODELETE: the addon stays loaded for the life of the process (see CMakeLists.txt).
      "ldflags": ["-Wl,-z,nodelete"],
      "variables": {
        "kvm_gmem_werror%": "<!(node -p \"process.env.KVM_GMEM_WERROR === '1' ? 1 : 0\")"
      },
      "conditions": [
        ["OS!='linux'", { "sources!": ["native/*.cc"] }],
        ["kvm_gmem_werror==1", { "cflags": ["-Werror"], "cflags_cc": ["-Werror"] }]
      ]
    }
  ]
}
