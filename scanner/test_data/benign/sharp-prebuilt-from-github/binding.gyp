{ "targets": [ { "target_name": "sharp", "sources": ["src/sharp.cc"], "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"] } ] }
