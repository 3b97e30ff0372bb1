import type { Command } from "commander";
import { registerAlarmCommands } from "./alarm.js";
import { registerAuthCommands } from "./auth.js";
import { registerClusterCommands } from "./cluster.js";
import { registerElectCommand } from "./elect.js";
import { registerKvCommands } from "./kv.js";
import { registerLeaseCommands } from "./lease.js";
import { registerLockCommand } from "./lock.js";
import { registerSnapshotCommands } from "./snapshot.js";

/** Registers the client-facing subcommands (put/get/…, lease, lock, elect, member, status, snapshot, alarm). */
export function registerClientCommands(program: Command): void {
  registerKvCommands(program);
  registerLeaseCommands(program);
  registerLockCommand(program);
  registerElectCommand(program);
  registerClusterCommands(program);
  registerSnapshotCommands(program);
  registerAlarmCommands(program);
  registerAuthCommands(program);
  program.addHelpText(
    "after",
    `
Client commands take --endpoints (or CONCORD_ENDPOINTS), --token (or CONCORD_TOKEN), --user name[:password]
(or CONCORD_USER, CONCORD_PASSWORD), for wss --cacert, --cert and
--key (or CONCORD_CACERT, CONCORD_CERT, CONCORD_KEY), --request-timeout and, for reads, --json.
Errors print one line on stderr and exit non-zero (1 failed, 2 bad arguments, 3 lock busy/timed out).

Examples:
  concord dev                                   # a local 3-member cluster
  export CONCORD_ENDPOINTS=ws://127.0.0.1:7100,ws://127.0.0.1:7110,ws://127.0.0.1:7120
  concord put config/mode blue && concord get config/mode
  concord lock nightly -- ./backup.sh           # never two at once; the child dies if the lock is lost
  concord elect scheduler "$(hostname)" -- ./scheduler
  concord status`,
  );
}
