"""A small, strict parser of the Prometheus text exposition format 0.0.4, for asserting on ``Metrics.render``.

Strict where a scraper would be: every sample must belong to a family declared by ``# TYPE`` *before* it, label
values may only use the three escapes of the format, values must parse as floats, the text ends with a newline.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("",), "gauge": ("",)}


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass
class Family:
    name: str
    type: str
    help: str | None = None
    samples: list[Sample] = field(default_factory=list)

    def value(self, sample_name: str | None = None, **labels: str) -> float:
        """The value of the one sample with exactly these labels (``le`` included for buckets)."""
        wanted = sample_name or self.name
        matches = [s.value for s in self.samples if s.name == wanted and s.labels == labels]
        assert len(matches) == 1, f"{wanted}{labels}: {len(matches)} samples"
        return matches[0]


def parse(text: str) -> dict[str, Family]:
    """Parse ``text``; raises AssertionError on anything a 0.0.4 parser would reject."""
    assert text.endswith("\n"), "the exposition must end with a line feed"
    families: dict[str, Family] = {}
    helps: dict[str, str] = {}
    for number, line in enumerate(text[:-1].split("\n"), start=1):
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            helps[name] = help_text
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert kind in _SUFFIXES, f"line {number}: unknown type {kind!r}"
            assert name not in families, f"line {number}: {name} declared twice"
            families[name] = Family(name, kind, helps.get(name))
        elif line.startswith("#") or not line:
            continue
        else:
            sample = _sample(line, number)
            _family_of(sample, families, number).samples.append(sample)
    return families


def _family_of(sample: Sample, families: dict[str, Family], number: int) -> Family:
    for family in families.values():
        if any(sample.name == family.name + suffix for suffix in _SUFFIXES[family.type]):
            return family
    raise AssertionError(f"line {number}: {sample.name} has no # TYPE before it")


def _sample(line: str, number: int) -> Sample:
    match = _NAME.match(line)
    assert match, f"line {number}: bad metric name"
    name, rest = match.group(), line[match.end() :]
    labels: dict[str, str] = {}
    if rest.startswith("{"):
        labels, rest = _labels(rest[1:], number)
    assert rest.startswith(" "), f"line {number}: no space before the value"
    value = rest[1:]
    assert value in ("+Inf", "-Inf", "NaN") or re.fullmatch(r"-?\d+(\.\d+)?(e[+-]?\d+)?", value), f"line {number}"
    return Sample(name, labels, math.inf if value == "+Inf" else float(value))


def _labels(text: str, number: int) -> tuple[dict[str, str], str]:
    labels: dict[str, str] = {}
    while not text.startswith("}"):
        match = _LABEL_NAME.match(text)
        assert match, f"line {number}: bad label name"
        assert text[match.end() : match.end() + 2] == '="', f"line {number}: bad label"
        i, chars = match.end() + 2, []
        while text[i] != '"':
            if text[i] == "\\":
                assert text[i + 1] in _ESCAPES, f"line {number}: bad escape \\{text[i + 1]}"
                chars.append(_ESCAPES[text[i + 1]])
                i += 2
            else:
                assert text[i] != "\n", f"line {number}: raw line feed in a label value"
                chars.append(text[i])
                i += 1
        assert match.group() not in labels, f"line {number}: duplicate label"
        labels[match.group()] = "".join(chars)
        text = text[i + 1 :]
        text = text[1:] if text.startswith(",") else text
    return labels, text[1:]
