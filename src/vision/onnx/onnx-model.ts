import type { ort } from './session.ts';
import { Exclusive } from './exclusive.ts';
import { openSession, ort as runtime } from './session.ts';

/**
 * One ONNX model fed from one reusable input buffer (named 'input' in every faceplugin model).
 * Calls that fill the buffer and run the model go through `exclusive`, so two overlapping
 * requests in one worker never overwrite each other's input mid-run.
 */
export class OnnxModel {
  readonly input: Float32Array;
  private session: ort.InferenceSession | undefined;
  private readonly lock = new Exclusive();

  constructor(
    private readonly modelPath: string,
    private readonly inputShape: readonly number[],
  ) {
    this.input = new Float32Array(inputShape.reduce((a, b) => a * b, 1));
  }

  /** Opens the session (ModelMissingError names a missing file) and runs it once: the first run plans and allocates. */
  async load(): Promise<void> {
    if (this.session) return;
    this.session = await openSession(this.modelPath);
    await this.infer();
  }

  /** Runs a job that fills `input` and calls `infer`, one job at a time. */
  exclusive<T>(job: () => Promise<T>): Promise<T> {
    return this.lock.run(job);
  }

  /** Runs the model on the current contents of `input`. */
  async infer(): Promise<ort.InferenceSession.ReturnType> {
    if (!this.session) throw new Error(`model ${this.modelPath}: load() was not called`);
    return this.session.run({ input: new runtime.Tensor('float32', this.input, this.inputShape) });
  }

  async dispose(): Promise<void> {
    await this.session?.release();
    this.session = undefined;
  }
}
