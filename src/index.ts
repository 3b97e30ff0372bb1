// Concord's package root: the client library. See docs/cli.md and README.md for a quick start.
export { connect, Client, type ClientOptions } from "./client/client.js";
export { ConcordError, type ClientErrorCode } from "./client/errors.js";
export type { TlsOptions } from "./client/connection.js";
export type {
  KeyValue,
  Consistency,
  PutOptions,
  PutResult,
  GetOptions,
  RangeOptions,
  RangeResult,
  DeleteOptions,
  DeleteResult,
} from "./client/kv.js";
export { TxnBuilder, type CompareTarget, type CompareOp, type TxnGetOptions, type TxnResult, type TxnOpResult } from "./client/txn.js";
export { Watch, type WatchEvent, type WatchOptions } from "./client/watch.js";
export { Lease, type LeaseInfo } from "./client/lease.js";
export type { LeaseListing } from "./client/inspect.js";
export { LockHandle, type LockOptions, type LockStatus } from "./client/locks.js";
export {
  Election,
  Leadership,
  Observer,
  type ElectionLeader,
  type ElectionStatus,
  type LeaderChange,
  type CampaignOptions,
} from "./client/election.js";
export type { Alarm, AlarmList, Member, MemberStatus, SnapshotInfo, SnapshotProgress } from "./client/cluster.js";
export { parseEndpoints } from "./client/endpoints.js";
export type { AuthApi, AuthStatus, Permission, PermissionAccess, PermissionKind } from "./client/auth.js";
