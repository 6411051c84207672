export {
  type JobReport,
  MemoryMetrics,
  type MemoryMetricsOptions,
  type ReadOperation,
  type ScrapeSources,
  type SummarizerHealth,
  type WriteOperation,
} from "./memory-metrics.js";
