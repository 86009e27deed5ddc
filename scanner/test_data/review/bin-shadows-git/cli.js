#!/usr/bin/env node
console.log('wrapping git');
