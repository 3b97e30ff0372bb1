// Public surface of the durable storage.
export {
  DurableStorage,
  type DurableStorageOptions,
  type StorageStats,
  type StorageLogger,
} from "./durable-storage.js";
export {
  StorageCorruptionError,
  StorageFailedError,
  StorageInputError,
  StorageLockedError,
  StorageVersionError,
} from "./errors.js";
export { FORMAT_VERSION } from "./data-dir.js";
