// Rules of the host and of the Raft core broken on purpose, to show the simulator is not blind: each mutant is a
// copy of src/ and sim/ in a temp directory with a few textual changes (never committed as code: only these
// patches are), run through the seeds npm test runs (sim/seeds.ts) until one reports a violation. A patch must
// match exactly once, or the mutant is stale against the code and refuses to run — a mutant that silently
// patched nothing would prove nothing.
//
// Where production code asserts the rule itself (TigerBeetle's habit), the mutant removes the assertion too, so
// that what catches it is the consequence the simulator checks: a lost write, a stale read, two leaders.

export interface Mutant {
  readonly description: string;
  readonly patches: ReadonlyArray<{ readonly file: string; readonly find: string; readonly replace: string }>;
}

export const MUTANTS: Readonly<Record<string, Mutant>> = {
  "snapshot-piece-reused-before-written": {
    description:
      "a snapshot file releases each piece as it is queued, before it is written: the snapshot job fills the piece again with later records while the write is still to come",
    patches: [
      {
        file: "src/storage/snapshot-file.ts",
        find: `    if (written) this.chain = this.chain.then(written);`,
        replace: `    if (written) written(); /* MUTANT */`,
      },
    ],
  },
  "follower-acks-before-fsync": {
    description: "a follower acknowledges an append before its fsync completes (sends every Ready's messages first)",
    patches: [
      {
        file: "src/host/replica.ts",
        find: `sentFirst: this.raft.role === "leader" && !termOrVoteChanged,`,
        replace: `sentFirst: !termOrVoteChanged /* MUTANT */,`,
      },
    ],
  },
  "read-before-applied": {
    description: "a linearizable read is answered once its read index is known, before the state machine applied it",
    patches: [
      { file: "src/host/reads.ts", find: `    if (applied >= rs.index) {\n      release(`, replace: `    if (true /* MUTANT */) {\n      release(` },
      { file: "src/host/reads.ts", find: `  assert(applied >= readIndex,`, replace: `  assert(true /* MUTANT */,` },
    ],
  },
  "leader-counts-before-fsync": {
    description:
      "the leader counts its own entries toward commit as soon as it appends them (as a raft whose host fsyncs before sending may), while its host sends appends before its fsync (assertion removed)",
    patches: [
      {
        file: "src/raft/raft.ts",
        find: `    this.log.append(entries);\n    this.appendsPending = true;`,
        replace: `    this.log.append(entries);\n    this.progress.get(this.id)?.maybeUpdate(index); /* MUTANT */\n    this.appendsPending = true;`,
      },
      { file: "src/raft/raft.ts", find: `    assert(self === undefined || self.match <= this.lastStableIndex(),`, replace: `    assert(true /* MUTANT */,` },
    ],
  },
  "apply-out-of-order": {
    description:
      "with several Readies in flight, a Ready's committed entries are applied when its write completes, but a Ready with nothing to write applies at once — ahead of earlier ones (assertion removed)",
    patches: [
      {
        file: "src/host/replica.ts",
        find: `    else for (const e of rd.committed) this.applyEntry(e);\n    if (item.written) this.finishReadies();`,
        replace: `    else if (!writes) for (const e of rd.committed) this.applyEntry(e); /* MUTANT */\n    if (item.written) this.finishReadies();`,
      },
      {
        file: "src/host/replica.ts",
        find: `    if (writes) this.observer.persisted?.(rd.entries, rd.hardState, rd.snapshot?.metadata);`,
        replace: `    if (writes) this.observer.persisted?.(rd.entries, rd.hardState, rd.snapshot?.metadata);\n    if (writes) for (const e of rd.committed) this.applyEntry(e); /* MUTANT */`,
      },
      { file: "src/host/replica.ts", find: `    assert(e.index === this.appliedIndex + 1,`, replace: `    assert(true /* MUTANT */,` },
    ],
  },
  "apply-ahead-of-snapshot": {
    description:
      "Readies are taken while a snapshot from the leader is still being restored (a run per turn): the entries committed after it are applied to the state machine the restore is about to replace (assertions removed)",
    patches: [
      {
        file: "src/host/replica.ts",
        find: `this.snapshotWaitsForWrites() || this.installing) break;`,
        replace: `this.snapshotWaitsForWrites()) break; /* MUTANT */`,
      },
      { file: "src/host/replica.ts", find: `    assert(e.index === this.appliedIndex + 1,`, replace: `    assert(true /* MUTANT */,` },
      { file: "src/host/replica.ts", find: `    assert(metadata.index > this.appliedIndex,`, replace: `    assert(true /* MUTANT */,` },
      { file: "src/host/replica.ts", find: `    assert(this.installing === undefined,`, replace: `    assert(true /* MUTANT */,` },
    ],
  },
  "new-leader-keeps-deadlines": {
    description: "a new leader keeps the lease deadlines it had when it last led instead of restarting them at now + TTL",
    patches: [
      {
        file: "src/host/lease-keeper.ts",
        find: `    this.deadlines.clear();\n    this.expiring.clear();\n    for (const l of leases) this.deadlines.set(l.id, { ttlMs: l.ttlMs, deadline: now + l.ttlMs });`,
        replace: `    for (const l of leases) if (!this.deadlines.has(l.id)) this.deadlines.set(l.id, { ttlMs: l.ttlMs, deadline: now + l.ttlMs }); /* MUTANT */`,
      },
      { file: "src/host/replica.ts", find: `    } else {\n      this.leases.clear();\n    }`, replace: `    } else {\n      /* MUTANT: deadlines kept */\n    }` },
    ],
  },
  "ack-before-apply": {
    description: "a put is acknowledged as soon as the leader appends it, before it is committed and applied",
    patches: [
      {
        file: "src/host/replica.ts",
        find: `    const p = this.proposals.add(index, this.raft.term, timed ? this.clock.now() : undefined, command.op);\n    this.observer.proposed?.();`,
        replace:
          `    const tracked = this.proposals.add(index, this.raft.term, timed ? this.clock.now() : undefined, command.op);\n` +
          `    if (command.op === "put") tracked.catch(() => {}); /* MUTANT */\n` +
          `    const p = command.op === "put" ? Promise.resolve({ ok: true, value: { revision: this.sm.revision + 1 } } as Outcome) : tracked;\n` +
          `    this.observer.proposed?.();`,
      },
    ],
  },
  "failed-fsync-ignored": {
    description: "a failed fsync of the WAL is ignored: the save reports success and the member carries on",
    patches: [
      {
        file: "src/storage/wal.ts",
        find: `    await a.handle.writeAndSync(parts, a.seg.size);\n`,
        replace: `    await a.handle.writeAndSync(parts, a.seg.size).catch(() => {}); /* MUTANT */\n`,
      },
    ],
  },
  "figure8-by-counting": {
    description: "Raft core: an entry of an earlier term is committed by counting replicas (the Figure 8 rule removed)",
    patches: [{ file: "src/raft/log.ts", find: `if (index > this.committed && this.termOrZero(index) === term) {`, replace: `if (index > this.committed /* MUTANT */) {` }],
  },
  "joint-commit-one-majority": {
    description: "Raft core: in a joint configuration an entry commits with a majority of the incoming voters alone",
    patches: [
      {
        file: "src/raft/quorum.ts",
        find: `  return Math.min(majorityCommitted(c.incoming, ackedIndex), majorityCommitted(c.outgoing, ackedIndex));`,
        replace: `  return majorityCommitted(c.incoming, ackedIndex); /* MUTANT */`,
      },
    ],
  },
  "joint-election-one-majority": {
    description: "Raft core: in a joint configuration an election is won with a majority of the incoming voters alone",
    patches: [
      {
        file: "src/raft/quorum.ts",
        find: `  const a = majorityVoteResult(c.incoming, votes);\n  const b = majorityVoteResult(c.outgoing, votes);`,
        replace: `  const a = majorityVoteResult(c.incoming, votes);\n  const b = a; /* MUTANT */`,
      },
    ],
  },
  "vote-twice-in-a-term": {
    description: "Raft core: a member that voted in this term grants a late vote request of another candidate of the same term",
    patches: [
      {
        file: "src/raft/raft.ts",
        find: `      (this.vote === null && this.leader === null) ||`,
        replace: `      this.leader === null /* MUTANT */ ||`,
      },
    ],
  },
  "auth-checked-only-where-received": {
    description:
      "runtime auth is checked only by the member a client is connected to: not again by the leader a follower forwards to, nor at apply — a lagging follower lets a revoked user's write through",
    patches: [
      { file: "src/statemachine/state-machine.ts", find: `    const denied = this.authorizer?.(command);`, replace: `    const denied = null; /* MUTANT */` },
      { file: "src/host/auth-service.ts", find: `    const as = p.kind === "internal" ? actorPrincipal(req.actor) : p;`, replace: `    const as = p.kind === "internal" ? undefined /* MUTANT */ : p;` },
    ],
  },
};
