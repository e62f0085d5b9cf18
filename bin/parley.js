#!/usr/bin/env node
// The `parley` binary: registers tsx (TypeScript straight from src/, no build step) and runs the CLI.
// Works from a checkout after `npm install`, as `npx parley ...` or `node bin/parley.js ...`.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/run.ts');
