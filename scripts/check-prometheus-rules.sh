#!/usr/bin/env bash
# deploy/prometheus/rules.yml as Prometheus loads it (`promtool check rules`), and its unit tests
# (`promtool test rules`): every alert fires where it should and stays quiet where it should not,
# and every recording rule computes the documented figure. Needs promtool (Debian: prometheus).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v promtool >/dev/null || { echo "promtool not found: apt-get install prometheus"; exit 1; }
promtool check rules deploy/prometheus/rules.yml
promtool test rules deploy/prometheus/rules.test.yml
