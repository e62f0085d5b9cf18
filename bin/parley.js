#!/usr/bin/env -S node --initial-heap-size=64
// The `parley` binary: registers tsx (TypeScript straight from src/, no build step) and runs the CLI.
// Works from a checkout after `npm install`, as `npx parley ...` or `node bin/parley.js ...`.
//
// The Node flags on the first line (also in `npm start`): a 64 MB starting heap. A client or server moving a
// large file has a small JavaScript heap but allocates a buffer per network read and per cipher update; with
// the default starting heap, V8 then runs a full garbage collection every few megabytes (its old generation
// limit sits within one new space of the live size), which cost a quarter of the CPU of a transfer
// (docs/media.md, "Speed"). Running `node bin/parley.js` without them works the same, only slower.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/run.ts');
