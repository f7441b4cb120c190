// Adds N no-op jobs with addBulk in chunks of 1000, removed on completion (as a queue
// that keeps no history; gpujobs keeps a record of every job for 24 h instead), or with
// `keep` kept as BullMQ does by default (what benches/peers/memory.sh measures).
// Usage: node bullmq_producer.mjs <redis port> <jobs> [keep]
import { Queue } from "bullmq";

const [port, total] = [Number(process.argv[2]), Number(process.argv[3])];
const keep = process.argv[4] === "keep";
const queue = new Queue("bench", { connection: { host: "127.0.0.1", port } });
for (let i = 0; i < total; i += 1000) {
  const n = Math.min(1000, total - i);
  await queue.addBulk(
    Array.from({ length: n }, (_, j) => ({
      name: "noop",
      data: { i: i + j },
      opts: keep ? {} : { removeOnComplete: true },
    })),
  );
}
await queue.close();
