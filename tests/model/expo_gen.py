"""Generated expositions for the scrape-cache benchmark and the differential tests."""

from __future__ import annotations

import random

_BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf")


def realistic_body(n_series: int = 10_000, seed: int = 1, openmetrics: bool = False, tick: int = 0) -> str:
    """Counters with 4 labels, gauges with 3 labels and 12-bucket histograms (+ _sum and _count), in
    that rotation, until ``n_series`` samples; ``tick`` changes the values only."""
    rnd = random.Random(seed * 1_000_003 + tick)
    out: list[str] = []
    n = 0
    fam = 0
    while n < n_series:
        kind = fam % 3
        name = f"app_metric_{fam}"
        if kind == 0:
            family = name if openmetrics else f"{name}_total"
            out.append(f"# HELP {family} A counter.\n# TYPE {family} counter\n")
            for i in range(40):
                out.append(
                    f'{name}_total{{method="GET",code="{200 + i}",handler="/api/v1/x{i}",'
                    f'instance="host-{i % 7}:9100"}} {rnd.randint(0, 10**9) + tick}\n'
                )
            n += 40
        elif kind == 1:
            out.append(f"# HELP {name} A gauge.\n# TYPE {name} gauge\n")
            for i in range(40):
                out.append(f'{name}{{zone="z{i}",pool="p{i % 3}",node="n-{i}"}} {rnd.random() * 1000!r}\n')
            n += 40
        else:
            out.append(f"# HELP {name}_seconds A histogram.\n# TYPE {name}_seconds histogram\n")
            for i in range(3):
                count = 0
                for le in _BUCKETS:
                    count += rnd.randint(0, 100)
                    out.append(f'{name}_seconds_bucket{{handler="/h{i}",le="{le}"}} {count}\n')
                out.append(f'{name}_seconds_sum{{handler="/h{i}"}} {rnd.random() * 100!r}\n')
                out.append(f'{name}_seconds_count{{handler="/h{i}"}} {count}\n')
            n += 42
        fam += 1
    if openmetrics:
        out.append("# EOF\n")
    return "".join(out)


_ALPHABET = 'abcXYZ019 _-.,:;{}=#"\\\n\tü€😀'


def _random_value_text(rnd: random.Random) -> str:
    return "".join(rnd.choice(_ALPHABET) for _ in range(rnd.randint(0, 12)))


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def random_body(
    rnd: random.Random, openmetrics: bool = False
) -> tuple[str, list[tuple[dict[str, str], float]]]:
    """A random valid exposition and the (labels, value) pairs it encodes (labels include __name__)."""
    out: list[str] = []
    expected: list[tuple[dict[str, str], float]] = []
    seen: set[tuple[tuple[str, str], ...]] = set()
    for fam in range(rnd.randint(1, 8)):
        quoted_name = rnd.random() < 0.15
        name = f"my.metric_{fam}" if quoted_name else f"metric_{fam}"
        mtype = rnd.choice(["gauge", "counter", "untyped"])
        if openmetrics and mtype == "untyped":
            mtype = "unknown"
        if mtype == "counter" and not openmetrics:
            name = f"{name}_total"  # text-format counters carry the suffix in the family name
        sample_name = f"{name}_total" if (openmetrics and mtype == "counter") else name
        qname = f'"{name}"'
        if rnd.random() < 0.7:
            out.append(f"# HELP {qname if quoted_name else name} Some help.\n")
        out.append(f"# TYPE {qname if quoted_name else name} {mtype}\n")
        for _ in range(rnd.randint(1, 6)):
            labels: dict[str, str] = {}
            for j in range(rnd.randint(0, 4)):
                lname = rnd.choice([f"l{j}", f"label_{j}", f"dotted.l{j}"])
                labels[lname] = _random_value_text(rnd)
            key = (*sorted(labels.items()), ("__name__", sample_name))
            if key in seen or (openmetrics and any(v == "" for v in labels.values())):
                continue
            seen.add(key)
            parts = []
            for k, v in labels.items():
                kk = k if k.replace("_", "a").isalnum() and not k[0].isdigit() else f'"{k}"'
                parts.append(f'{kk}="{escape_label_value(v)}"')
            value = rnd.choice([0.0, 1.0, -2.5, 1e-9, 123456789.0, float("nan"), float("inf"), rnd.random()])
            if openmetrics and mtype == "counter" and (value < 0 or value != value):
                value = 3.0
            vtext = {float("inf"): "+Inf"}.get(value, repr(value) if value == value else "NaN")
            if sample_name.startswith("my."):
                series = "{" + ",".join([f'"{sample_name}"', *parts]) + "}"
            else:
                series = sample_name + ("{" + ",".join(parts) + "}" if parts else "")
            out.append(f"{series} {vtext}\n")
            expected.append(({"__name__": sample_name, **{k: v for k, v in labels.items()}}, value))
    if openmetrics:
        out.append("# EOF\n")
    return "".join(out), expected
