"""Table of scripts/bench-decode.sh: criterion's mean per bench, round and side (base / head),
the head/base ratio per round and the median ratio over rounds."""

import json
import statistics
import sys
from pathlib import Path

BENCHES = ["decode_json_declared_schema", "decode_json_inferred_schema"]


def mean_us(group: Path, bench: str, baseline: str) -> float:
    estimates = json.loads((group / bench / baseline / "estimates.json").read_text())
    return estimates["mean"]["point_estimate"] / 1000.0


def main() -> None:
    group, rounds = Path(sys.argv[1]), int(sys.argv[2])
    print(f"{'bench':<30} {'round':>5} {'base us':>9} {'head us':>9} {'head/base':>9}")
    for bench in BENCHES:
        ratios = []
        for r in range(1, rounds + 1):
            base = mean_us(group, bench, f"ab-base-{r}")
            head = mean_us(group, bench, f"ab-head-{r}")
            ratios.append(head / base)
            print(f"{bench:<30} {r:>5} {base:>9.0f} {head:>9.0f} {head / base:>9.3f}")
        print(f"{bench:<30} {'median':>5} {'':>9} {'':>9} {statistics.median(ratios):>9.3f}")


if __name__ == "__main__":
    main()
