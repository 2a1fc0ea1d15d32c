import type { Command } from 'commander';
import { projectPath } from '../config/paths.ts';
import { configFromOptions, type GlobalOptions } from './options.ts';

export function registerBenchCommand(program: Command): void {
  const bench = program.command('bench').description('benchmarks: print a table and write JSON under bench/results/');
  bench
    .command('vision')
    .description('CPU-ms per stage, frames/s with 1 and N workers, and the ratio to Human detect() with faceres')
    .option('--repeats <n>', 'measured passes over the images', (v) => Number.parseInt(v, 10), 5)
    .option('--frames <n>', 'frames per throughput run', (v) => Number.parseInt(v, 10), 60)
    .option('--datasets <dir>', 'shared datasets folder (one-face images come from its pose/ set)', projectPath('../shared/datasets'))
    .option('--skip-human', "skip the comparison with Human's own detect()")
    .action(async (options: { repeats: number; frames: number; datasets: string; skipHuman?: boolean }) => {
      // The benchmark lives in bench/ with the others; it is loaded only when asked for.
      const { runVisionBench } = await import('../../bench/vision.ts');
      const config = configFromOptions(program.opts<GlobalOptions>());
      await runVisionBench(config, { repeats: options.repeats, frames: options.frames, datasetDir: options.datasets, skipHuman: options.skipHuman === true });
    });
}
