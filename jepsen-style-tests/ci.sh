#!/usr/bin/env bash
# The Jepsen-style suite in CI (called by .ci/run): make a Docker engine available when possible, run the
# suite's self-test, the bounded CI mix (every workload, every nemesis, both drivers when Docker runs; the
# container driver is reported as skipped, with the reason, when it cannot) and the blindness checks
# (mutants that must be caught). Bounded: about 10 minutes in all. Results: results/ci-<epoch>/.
set -euo pipefail
# testcontainers (the container driver, the image build) without its reaper: Ryuk is an image to pull, and the
# driver removes what it creates itself.
export TESTCONTAINERS_RYUK_DISABLED=true
cd "$(dirname "$0")/.."

started_dockerd=""
if ! docker version >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && ! command -v dockerd >/dev/null 2>&1; then
    echo "jepsen ci: installing docker.io, iptables, util-linux (container driver)"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io iptables util-linux >/dev/null 2>&1 ||
      echo "jepsen ci: docker install failed; the container driver will be skipped"
  fi
  if command -v dockerd >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "jepsen ci: starting dockerd"
    dockerd >/tmp/concord-jepsen-dockerd.log 2>&1 &
    started_dockerd=$!
    for _ in $(seq 1 30); do docker version >/dev/null 2>&1 && break; sleep 1; done
    docker version >/dev/null 2>&1 || echo "jepsen ci: dockerd did not come up (see /tmp/concord-jepsen-dockerd.log); the container driver will be skipped"
  fi
fi
stop_dockerd() { if [ -n "$started_dockerd" ]; then kill "$started_dockerd" 2>/dev/null || true; fi; }
trap stop_dockerd EXIT

results="results/ci-$(date +%s)"
npx tsx jepsen-style-tests/self-test.ts
npx tsx jepsen-style-tests/cli.ts --ci --quiet --results "$results"
npx tsx jepsen-style-tests/cli.ts --mutants --quiet --results "$results"
echo "jepsen ci: notes in $results/ci-note.md and $results/mutants-note.md"
