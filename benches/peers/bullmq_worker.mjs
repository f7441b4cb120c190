// One BullMQ Worker at concurrency 100 running no-op jobs; exits after N completions.
// Usage: node bullmq_worker.mjs <redis port> <jobs>
import { Worker } from "bullmq";

const [port, total] = [Number(process.argv[2]), Number(process.argv[3])];
let done = 0;
const worker = new Worker("bench", async () => {}, {
  connection: { host: "127.0.0.1", port },
  concurrency: 100,
});
worker.on("completed", async () => {
  done += 1;
  if (done === total) {
    await worker.close();
    process.exit(0);
  }
});
worker.on("ready", () => console.log("ready"));
