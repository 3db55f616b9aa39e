"""A check's verdict: its name, a few lines for the report, and every violation it found."""

from __future__ import annotations

from dataclasses import dataclass, field

SHOWN_VIOLATIONS = 5


@dataclass
class CheckResult:
    name: str
    lines: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations
