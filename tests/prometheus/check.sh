#!/usr/bin/env bash
# The shipped Prometheus configuration: rules parse, the rule unit tests pass, the scrape
# configuration is valid.
set -euo pipefail
cd "$(dirname "$0")/../../charts/redflag/files"
promtool check rules alerts.yml
promtool test rules alerts_test.yml
promtool check config prometheus.yml
