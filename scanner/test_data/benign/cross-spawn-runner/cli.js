#!/usr/bin/env node
const { spawn } = require('child_process');
const [command, ...args] = process.argv.slice(2);
const child = spawn(command, args, { stdio: 'inherit', env: { ...process.env, FORCE_COLOR: '1' } });
child.on('exit', (code) => process.exit(code));
