// After `tsc`, copy the files the compiled code reads at run time (the Lua scripts) next to it in dist/.
import { cpSync } from 'node:fs';

cpSync('server/redlock/scripts', 'dist/server/redlock/scripts', { recursive: true });
