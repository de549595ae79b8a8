"""Parses Prometheus / OpenMetrics text (stdin) with prometheus_client's OpenMetrics parser,
the strict one (families contiguous, one TYPE each, histograms well formed, `# EOF` last), and
prints every sample as JSON: [{"name", "labels", "value"}, ...]. Exits non-zero when the text
does not parse."""

import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        samples.append({"name": s.name, "labels": s.labels, "value": s.value})
json.dump(samples, sys.stdout)
