// Worker threads started from the TypeScript sources (npm start, tests) cannot load .ts files on
// their own under Node 20: register tsx in this thread, then load the real worker module.
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.tsEntry);
