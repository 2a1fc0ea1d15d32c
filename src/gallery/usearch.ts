import { createRequire } from 'node:module';
import type * as Usearch from 'usearch';

/*
 * usearch's ESM build looks for its native addon from `__dirname`, which ESM does not define, and
 * recurses until the stack overflows when Node (or vitest) loads it natively. Its CommonJS build
 * works, so load that one.
 */
const require = createRequire(import.meta.url);

export const usearch = require('usearch') as typeof Usearch;
export type UsearchIndex = Usearch.Index;
