#!/usr/bin/env node
/** Entry point of `npm run bench` (the same as `roomcast bench`). */
import { runBench } from './main.js';

process.exitCode = await runBench(process.argv.slice(2));
