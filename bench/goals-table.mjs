#!/usr/bin/env node
// Prints the README's goals table from a bench run: node bench/goals-table.mjs [latest.json]
// (default bench/results/latest.json, the committed run behind the README).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { goalsMarkdown } from './lib/report.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const file = process.argv[2] ?? path.join(here, 'results', 'latest.json');
const report = JSON.parse(readFileSync(file, 'utf8'));
process.stdout.write(`${goalsMarkdown(report.results)}\n`);
