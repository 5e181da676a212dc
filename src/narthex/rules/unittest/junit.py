"""A JUnit XML report of rule unit tests (promtool's ``--junit``)."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field


@dataclass
class JUnitCase:
    name: str
    failures: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.failures.append(message)


@dataclass
class JUnitSuite:
    name: str
    timestamp: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))
    cases: list[JUnitCase] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def case(self, name: str) -> JUnitCase:
        case = JUnitCase(name)
        self.cases.append(case)
        return case

    def abort(self, message: str) -> None:
        self.errors.append(message)


@dataclass
class JUnitReport:
    suites: list[JUnitSuite] = field(default_factory=list)

    def suite(self, name: str) -> JUnitSuite:
        suite = JUnitSuite(name)
        self.suites.append(suite)
        return suite

    def to_xml(self) -> str:
        root = ET.Element("testsuites")
        for suite in self.suites:
            failures = sum(1 for c in suite.cases if c.failures)
            elem = ET.SubElement(
                root,
                "testsuite",
                name=suite.name,
                tests=str(len(suite.cases)),
                failures=str(failures),
                errors=str(len(suite.errors)),
                skipped="0",
                timestamp=suite.timestamp,
            )
            for error in suite.errors:
                ET.SubElement(elem, "error", message=error, type="")
            for case in suite.cases:
                case_elem = ET.SubElement(elem, "testcase", name=case.name)
                for failure in case.failures:
                    ET.SubElement(case_elem, "failure", message=failure, type="")
        return ET.tostring(root, encoding="unicode")

    def write(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(self.to_xml())
