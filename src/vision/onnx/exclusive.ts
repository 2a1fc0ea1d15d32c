/**
 * Runs async jobs one at a time, in call order. Each model wrapper reuses one input buffer and
 * one session; a worker may start a second request while the first awaits inference, and the
 * second must not overwrite the first one's input mid-run.
 */
export class Exclusive {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(job: () => Promise<T>): Promise<T> {
    const result = this.tail.then(job);
    // The next job waits for this one however it ends.
    this.tail = result.catch(() => undefined);
    return result;
  }
}
