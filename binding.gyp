{
  "targets": [
    {
      "target_name": "flashattn",
      "sources": [
        "<!@(node -p \"require('fs').readdirSync('native').filter(f => f.endsWith('.cpp')).map(f => 'native/' + f).join(' ')\")",
        "<!@(node -p \"require('fs').readdirSync('native/cpu').filter(f => f.endsWith('.cpp')).map(f => 'native/cpu/' + f).join(' ')\")",
        "<!@(node -p \"require('fs').readdirSync('native/request').filter(f => f.endsWith('.cpp')).map(f => 'native/request/' + f).join(' ')\")",
        "<!@(node -p \"require('fs').readdirSync('native/exec').filter(f => f.endsWith('.cpp')).map(f => 'native/exec/' + f).join(' ')\")",
        "<!@(node -p \"require('fs').readdirSync('native/kvcache').filter(f => f.endsWith('.cpp')).map(f => 'native/kvcache/' + f).join(' ')\")",
        "<!@(node -p \"require('fs').readdirSync('native/quant').filter(f => f.endsWith('.cpp')).map(f => 'native/quant/' + f).join(' ')\")",
        "<!@(node -p \"require('fs').readdirSync('native/varlen').filter(f => f.endsWith('.cpp')).map(f => 'native/varlen/' + f).join(' ')\")",
        "<!@(node -p \"require('fs').readdirSync('cuda/plan').filter(f => f.endsWith('.cpp')).map(f => 'cuda/plan/' + f).join(' ')\")"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        ".",
        "native",
        "cuda"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions", "-O2"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-O2"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"],
      "ldflags": ["-pthread"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LIBRARY": "libc++",
        "MACOSX_DEPLOYMENT_TARGET": "11.0",
        "OTHER_CPLUSPLUSFLAGS": ["-std=c++17", "-O3"]
      },
      "msvs_settings": {
        "VCCLCompilerTool": { "ExceptionHandling": 1, "AdditionalOptions": ["/std:c++17"] }
      }
    }
  ]
}
