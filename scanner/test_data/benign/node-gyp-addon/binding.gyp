{ "targets": [ { "target_name": "bufferutil", "sources": [ "src/bufferutil.c" ], "cflags": [ "-std=c99" ] } ] }
