// After `tsc`, copy the files the compiled code reads at run time next to it in dist/: the Lua scripts (the
// server's, and the SDK's that FencedStore loads relative to its module), and the FileDescriptorSet that gRPC
// reflection serves (loaded relative to server/grpc's module, from gen/).
import { cpSync } from 'node:fs';

cpSync('server/redlock/scripts', 'dist/server/redlock/scripts', { recursive: true });
cpSync('client/src/lua', 'dist/client/src/lua', { recursive: true });
cpSync('gen/descriptors.binpb', 'dist/gen/descriptors.binpb');
