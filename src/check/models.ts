// Sequential specifications that the linearizability search replays operations against.
//
// A model is pure: `step` returns whether the operation is legal in `state` and the state after it. `key` maps a
// state to a string such that equal keys ⇔ equal states; the search memoises (linearized set, key) pairs, so a
// key that confused two different states would make the checker unsound.
//
// `info` operations are optional to the search (they may never have happened), so a model only ever says how an
// operation behaves IF it takes effect at this point. For an `info` operation the result is unknown, so the
// model must accept every outcome the operation could have had from this state.

import type { Operation, ProcessId } from "./history.js";
import { ModelInputError } from "./errors.js";

export interface StepResult<S> {
  readonly ok: boolean;
  readonly state: S;
}

export interface Model<S> {
  readonly name: string;
  /** The state before any operation; throws ModelInputError when `initial` is not a value of this model. */
  init(initial: unknown): S;
  /** A description of what is wrong with `op` for this model, or null when the model can judge it. */
  validate(op: Operation): string | null;
  /** True when `op` constrains nothing and can be dropped before the search (e.g. a read with unknown result). */
  irrelevant(op: Operation): boolean;
  step(state: S, op: Operation): StepResult<S>;
  key(state: S): string;
  describe(state: S): string;
}

/** JSON with object keys sorted, so structurally equal values encode identically. `undefined` encodes as null. */
export function canonicalJson(value: unknown): string {
  if (value === undefined || value === null) return "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object") {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

// ---------------------------------------------------------------------------------------------------------
// Register: read / write / cas over one JSON value (`null` = absent), as the vectors' README defines.
// The state is the canonical JSON of the current value, which is also its memoisation key.

export const registerModel: Model<string> = {
  name: "register",
  init(initial) {
    return canonicalJson(initial);
  },
  validate(op) {
    switch (op.f) {
      case "read":
      case "write":
        return null;
      case "cas":
        return Array.isArray(op.input) && op.input.length === 2
          ? null
          : `cas value must be [expected, new], got ${canonicalJson(op.input)}`;
      default:
        return `unknown operation "${op.f}"; a register accepts read, write, cas`;
    }
  },
  irrelevant(op) {
    // A read whose result is unknown does not change the register and tells us nothing.
    return op.f === "read" && op.status === "info";
  },
  step(state, op) {
    switch (op.f) {
      case "read":
        return { ok: op.status === "info" || canonicalJson(op.output) === state, state };
      case "write":
        return { ok: true, state: canonicalJson(op.input) };
      case "cas": {
        const [expected, next] = op.input as [unknown, unknown];
        // An `ok` cas swapped; an `info` cas that takes effect here swaps too (one that finds another value is
        // indistinguishable from one that never happened, which the search already explores).
        if (canonicalJson(expected) !== state) return { ok: false, state };
        return { ok: true, state: canonicalJson(next) };
      }
      default:
        return { ok: false, state };
    }
  },
  key: (state) => state,
  describe: (state) => `value ${state}`,
};

// ---------------------------------------------------------------------------------------------------------
// Mutex: acquire / release with an owner. `acquire` is legal only when free; `release` only by the holder.
// Owner-aware, so stricter than Knossos's owner-less mutex: every history it accepts Knossos accepts too.
// Initial value: `null` or `false` (free), or `{ "holder": P }`.

export type MutexState = ProcessId | null;

function holderKey(holder: ProcessId | null): string {
  if (holder === null) return "-";
  return typeof holder === "number" ? `n${holder}` : `s${holder}`;
}

function parseHolder(model: string, initial: unknown): ProcessId | null {
  if (initial === null || initial === undefined || initial === false) return null;
  if (typeof initial === "object" && !Array.isArray(initial)) {
    const holder = (initial as Record<string, unknown>).holder;
    if (
      (typeof holder === "number" && Number.isSafeInteger(holder)) ||
      (typeof holder === "string" && holder.length > 0)
    )
      return holder;
  }
  throw new ModelInputError(
    model,
    `initial value must be null or false (free) or {"holder": process}, got ${canonicalJson(initial)}`,
  );
}

export const mutexModel: Model<MutexState> = {
  name: "mutex",
  init: (initial) => parseHolder("mutex", initial),
  validate(op) {
    return op.f === "acquire" || op.f === "release"
      ? null
      : `unknown operation "${op.f}"; a mutex accepts acquire, release`;
  },
  irrelevant: () => false,
  step(holder, op) {
    if (op.f === "acquire") return holder === null ? { ok: true, state: op.process } : { ok: false, state: holder };
    return holder === op.process ? { ok: true, state: null } : { ok: false, state: holder };
  },
  key: holderKey,
  describe: (holder) => (holder === null ? "free" : `held by p${String(holder)}`),
};

// ---------------------------------------------------------------------------------------------------------
// Fenced mutex: a mutex whose `acquire` returns a fencing token (field "token" on the ok completion). Tokens
// strictly increase across grants; `release` must carry the holder's token.
//
// `lastToken` is a lower bound on every token issued so far. An `info` acquire that takes effect issues a token
// nobody saw; tokens are integers, so the least it can be is lastToken + 1, and assuming exactly that is the
// most permissive choice for what follows (the search is then exact, not merely sound). While the holder's
// token is unknown, its release is accepted with any token above the bound before its grant.
// Initial value: `null`/`false` (free, no token issued yet) or `{ "lastToken": N }`.

export interface FencedMutexState {
  readonly holder: ProcessId | null;
  /** The holder's token; null when free or when the granting acquire's result is unknown. */
  readonly holderToken: number | null;
  /** Greatest token issued so far (a lower bound when some were unknown); -Infinity before the first grant. */
  readonly lastToken: number;
}

export const fencedMutexModel: Model<FencedMutexState> = {
  name: "fenced-mutex",
  init(initial) {
    if (initial === null || initial === undefined || initial === false)
      return { holder: null, holderToken: null, lastToken: -Infinity };
    if (typeof initial === "object" && !Array.isArray(initial)) {
      const lastToken = (initial as Record<string, unknown>).lastToken;
      if (typeof lastToken === "number" && Number.isSafeInteger(lastToken))
        return { holder: null, holderToken: null, lastToken };
    }
    throw new ModelInputError(
      "fenced-mutex",
      `initial value must be null or false or {"lastToken": integer}, got ${canonicalJson(initial)}`,
    );
  },
  validate(op) {
    if (op.f !== "acquire" && op.f !== "release")
      return `unknown operation "${op.f}"; a fenced mutex accepts acquire, release`;
    if (op.f === "acquire" && op.status === "ok" && op.token === undefined)
      return `an ok acquire must return its fencing token in "token"`;
    if (op.f === "release" && op.token === undefined)
      return `a release must carry the holder's fencing token in "token"`;
    return null;
  },
  irrelevant: () => false,
  step(state, op) {
    if (op.f === "acquire") {
      if (state.holder !== null) return { ok: false, state };
      if (op.status === "ok") {
        const token = op.token!;
        if (!(token > state.lastToken)) return { ok: false, state };
        return { ok: true, state: { holder: op.process, holderToken: token, lastToken: token } };
      }
      const least = state.lastToken === -Infinity ? -Infinity : state.lastToken + 1;
      return { ok: true, state: { holder: op.process, holderToken: null, lastToken: least } };
    }
    if (state.holder !== op.process) return { ok: false, state };
    const token = op.token!;
    const matches = state.holderToken === null ? token >= state.lastToken : token === state.holderToken;
    if (!matches) return { ok: false, state };
    return { ok: true, state: { holder: null, holderToken: null, lastToken: Math.max(state.lastToken, token) } };
  },
  key: (state) => `${holderKey(state.holder)}|${state.holderToken ?? "?"}|${state.lastToken}`,
  describe(state) {
    const last = state.lastToken === -Infinity ? "none" : String(state.lastToken);
    if (state.holder === null) return `free (last token ${last})`;
    return `held by p${String(state.holder)} with token ${state.holderToken ?? "unknown"} (last token ${last})`;
  },
};

export type ModelName = "register" | "mutex" | "fenced-mutex";

export const MODELS: Readonly<Record<ModelName, Model<unknown>>> = {
  register: registerModel as Model<unknown>,
  mutex: mutexModel as Model<unknown>,
  "fenced-mutex": fencedMutexModel as Model<unknown>,
};

export function modelByName(name: string): Model<unknown> {
  const model = (MODELS as Record<string, Model<unknown> | undefined>)[name];
  if (model === undefined)
    throw new ModelInputError(name, `unknown model; accepted models: ${Object.keys(MODELS).join(", ")}`);
  return model;
}
