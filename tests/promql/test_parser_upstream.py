# ruff: noqa: E501
"""Parse and error cases taken from Prometheus's promql/parser/parse_test.go.

The expected trees were checked field by field (positions included) against the Go ASTs in that file.

Each error case gives the input and the exact first error Prometheus reports (with its position).
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

import pytest

from narthex.model.matcher import Matcher
from narthex.promql import ast as A
from narthex.promql.errors import ParseError
from narthex.promql.parser import ALL_FEATURES, FEATURE_BINOP_FILL_MODIFIERS, parse_expr

# parse_test.go parses with experimental functions, duration expressions and extended range selectors.
FEATURES = ALL_FEATURES - {FEATURE_BINOP_FILL_MODIFIERS}

# (query, expected tree) for every successful case of parse_test.go, checked against its Go AST.
UPSTREAM_TREES = [
    ("1", "NumberLiteral@0:1(val=1.0)"),
    ("+Inf", "NumberLiteral@0:4(val=inf)"),
    ("-Inf", "NumberLiteral@0:4(val=-inf)"),
    (".5", "NumberLiteral@0:2(val=0.5)"),
    ("5.", "NumberLiteral@0:2(val=5.0)"),
    ("123.4567", "NumberLiteral@0:8(val=123.4567)"),
    ("5e-3", "NumberLiteral@0:4(val=0.005)"),
    ("5e3", "NumberLiteral@0:3(val=5000.0)"),
    ("0xc", "NumberLiteral@0:3(val=12.0)"),
    ("0755", "NumberLiteral@0:4(val=493.0)"),
    ("+5.5e-3", "NumberLiteral@0:7(val=0.0055)"),
    ("-0755", "NumberLiteral@0:5(val=-493.0)"),
    ("1 + 1", "BinaryExpr@0:5(op=+,lhs=NumberLiteral@0:1(val=1.0),rhs=NumberLiteral@4:5(val=1.0))"),
    ("1 - 1", "BinaryExpr@0:5(op=-,lhs=NumberLiteral@0:1(val=1.0),rhs=NumberLiteral@4:5(val=1.0))"),
    ("1 * 1", "BinaryExpr@0:5(op=*,lhs=NumberLiteral@0:1(val=1.0),rhs=NumberLiteral@4:5(val=1.0))"),
    ("1 % 1", "BinaryExpr@0:5(op=%,lhs=NumberLiteral@0:1(val=1.0),rhs=NumberLiteral@4:5(val=1.0))"),
    ("1 / 1", "BinaryExpr@0:5(op=/,lhs=NumberLiteral@0:1(val=1.0),rhs=NumberLiteral@4:5(val=1.0))"),
    (
        "1 == bool 1",
        "BinaryExpr@0:11(op===,lhs=NumberLiteral@0:1(val=1.0),rhs=NumberLiteral@10:11(val=1.0),return_bool=True)",
    ),
    (
        "1 != bool 1",
        "BinaryExpr@0:11(op=!=,lhs=NumberLiteral@0:1(val=1.0),rhs=NumberLiteral@10:11(val=1.0),return_bool=True)",
    ),
    (
        "1 > bool 1",
        "BinaryExpr@0:10(op=>,lhs=NumberLiteral@0:1(val=1.0),rhs=NumberLiteral@9:10(val=1.0),return_bool=True)",
    ),
    (
        "1 >= bool 1",
        "BinaryExpr@0:11(op=>=,lhs=NumberLiteral@0:1(val=1.0),rhs=NumberLiteral@10:11(val=1.0),return_bool=True)",
    ),
    (
        "1 < bool 1",
        "BinaryExpr@0:10(op=<,lhs=NumberLiteral@0:1(val=1.0),rhs=NumberLiteral@9:10(val=1.0),return_bool=True)",
    ),
    (
        "1 <= bool 1",
        "BinaryExpr@0:11(op=<=,lhs=NumberLiteral@0:1(val=1.0),rhs=NumberLiteral@10:11(val=1.0),return_bool=True)",
    ),
    (
        "-1^2",
        "UnaryExpr@0:4(op=-,expr=BinaryExpr@1:4(op=^,lhs=NumberLiteral@1:2(val=1.0),rhs=NumberLiteral@3:4(val=2.0)))",
    ),
    ("-1*2", "BinaryExpr@0:4(op=*,lhs=NumberLiteral@0:2(val=-1.0),rhs=NumberLiteral@3:4(val=2.0))"),
    ("-1+2", "BinaryExpr@0:4(op=+,lhs=NumberLiteral@0:2(val=-1.0),rhs=NumberLiteral@3:4(val=2.0))"),
    (
        "-1^-2",
        "UnaryExpr@0:5(op=-,expr=BinaryExpr@1:5(op=^,lhs=NumberLiteral@1:2(val=1.0),rhs=NumberLiteral@3:5(val=-2.0)))",
    ),
    (
        "+1 + -2 * 1",
        "BinaryExpr@0:11(op=+,lhs=NumberLiteral@0:2(val=1.0),rhs=BinaryExpr@5:11(op=*,lhs=NumberLiteral@5:7(val=-2.0),rhs=NumberLiteral@10:11(val=1.0)))",
    ),
    (
        "1 + 2/(3*1)",
        "BinaryExpr@0:11(op=+,lhs=NumberLiteral@0:1(val=1.0),rhs=BinaryExpr@4:11(op=/,lhs=NumberLiteral@4:5(val=2.0),rhs=ParenExpr@6:11(expr=BinaryExpr@7:10(op=*,lhs=NumberLiteral@7:8(val=3.0),rhs=NumberLiteral@9:10(val=1.0)))))",
    ),
    (
        "1 < bool 2 - 1 * 2",
        "BinaryExpr@0:18(op=<,lhs=NumberLiteral@0:1(val=1.0),rhs=BinaryExpr@9:18(op=-,lhs=NumberLiteral@9:10(val=2.0),rhs=BinaryExpr@13:18(op=*,lhs=NumberLiteral@13:14(val=1.0),rhs=NumberLiteral@17:18(val=2.0))),return_bool=True)",
    ),
    (
        "-some_metric",
        "UnaryExpr@0:12(op=-,expr=VectorSelector@1:12(name=some_metric,matchers=[__name__='some_metric']))",
    ),
    (
        "+some_metric",
        "UnaryExpr@0:12(op=+,expr=VectorSelector@1:12(name=some_metric,matchers=[__name__='some_metric']))",
    ),
    (
        " +some_metric",
        "UnaryExpr@1:13(op=+,expr=VectorSelector@2:13(name=some_metric,matchers=[__name__='some_metric']))",
    ),
    (
        ' +{"some_metric"}',
        "UnaryExpr@1:17(op=+,expr=VectorSelector@2:17(name=,matchers=[__name__='some_metric']))",
    ),
    (
        'offset{step="1s"}[5m]',
        "MatrixSelector@0:21(vector_selector=VectorSelector@0:17(name=offset,matchers=[step='1s',__name__='offset']),range_ms=300000)",
    ),
    (
        'step{offset="1s"}[5m]',
        "MatrixSelector@0:21(vector_selector=VectorSelector@0:17(name=step,matchers=[offset='1s',__name__='step']),range_ms=300000)",
    ),
    ('anchored{job="test"}', "VectorSelector@0:20(name=anchored,matchers=[job='test',__name__='anchored'])"),
    ('smoothed{job="test"}', "VectorSelector@0:20(name=smoothed,matchers=[job='test',__name__='smoothed'])"),
    (
        "foo * bar",
        "BinaryExpr@0:9(op=*,lhs=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),rhs=VectorSelector@6:9(name=bar,matchers=[__name__='bar']),matching=VM(one-to-one,[],on=False,[],None,None))",
    ),
    (
        "foo * sum",
        "BinaryExpr@0:9(op=*,lhs=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),rhs=VectorSelector@6:9(name=sum,matchers=[__name__='sum']),matching=VM(one-to-one,[],on=False,[],None,None))",
    ),
    (
        "foo == 1",
        "BinaryExpr@0:8(op===,lhs=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),rhs=NumberLiteral@7:8(val=1.0))",
    ),
    (
        "foo == bool 1",
        "BinaryExpr@0:13(op===,lhs=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),rhs=NumberLiteral@12:13(val=1.0),return_bool=True)",
    ),
    (
        "2.5 / bar",
        "BinaryExpr@0:9(op=/,lhs=NumberLiteral@0:3(val=2.5),rhs=VectorSelector@6:9(name=bar,matchers=[__name__='bar']))",
    ),
    (
        "foo and bar",
        "BinaryExpr@0:11(op=and,lhs=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),rhs=VectorSelector@8:11(name=bar,matchers=[__name__='bar']),matching=VM(many-to-many,[],on=False,[],None,None))",
    ),
    (
        "foo or bar",
        "BinaryExpr@0:10(op=or,lhs=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),rhs=VectorSelector@7:10(name=bar,matchers=[__name__='bar']),matching=VM(many-to-many,[],on=False,[],None,None))",
    ),
    (
        "foo unless bar",
        "BinaryExpr@0:14(op=unless,lhs=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),rhs=VectorSelector@11:14(name=bar,matchers=[__name__='bar']),matching=VM(many-to-many,[],on=False,[],None,None))",
    ),
    (
        "foo * on(test,blub) bar",
        "BinaryExpr@0:23(op=*,lhs=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),rhs=VectorSelector@20:23(name=bar,matchers=[__name__='bar']),matching=VM(one-to-one,['test', 'blub'],on=True,[],None,None))",
    ),
    (
        "foo * on(test,blub) group_left bar",
        "BinaryExpr@0:34(op=*,lhs=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),rhs=VectorSelector@31:34(name=bar,matchers=[__name__='bar']),matching=VM(many-to-one,['test', 'blub'],on=True,[],None,None))",
    ),
    (
        "foo and on(test,blub) bar",
        "BinaryExpr@0:25(op=and,lhs=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),rhs=VectorSelector@22:25(name=bar,matchers=[__name__='bar']),matching=VM(many-to-many,['test', 'blub'],on=True,[],None,None))",
    ),
    (
        "foo and on() bar",
        "BinaryExpr@0:16(op=and,lhs=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),rhs=VectorSelector@13:16(name=bar,matchers=[__name__='bar']),matching=VM(many-to-many,[],on=True,[],None,None))",
    ),
    (
        "foo and ignoring(test,blub) bar",
        "BinaryExpr@0:31(op=and,lhs=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),rhs=VectorSelector@28:31(name=bar,matchers=[__name__='bar']),matching=VM(many-to-many,['test', 'blub'],on=False,[],None,None))",
    ),
    (
        "foo and ignoring() bar",
        "BinaryExpr@0:22(op=and,lhs=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),rhs=VectorSelector@19:22(name=bar,matchers=[__name__='bar']),matching=VM(many-to-many,[],on=False,[],None,None))",
    ),
    (
        "foo unless on(bar) baz",
        "BinaryExpr@0:22(op=unless,lhs=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),rhs=VectorSelector@19:22(name=baz,matchers=[__name__='baz']),matching=VM(many-to-many,['bar'],on=True,[],None,None))",
    ),
    (
        "foo / on(test,blub) group_left(bar) bar",
        "BinaryExpr@0:39(op=/,lhs=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),rhs=VectorSelector@36:39(name=bar,matchers=[__name__='bar']),matching=VM(many-to-one,['test', 'blub'],on=True,['bar'],None,None))",
    ),
    (
        "foo / ignoring(test,blub) group_left(blub) bar",
        "BinaryExpr@0:46(op=/,lhs=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),rhs=VectorSelector@43:46(name=bar,matchers=[__name__='bar']),matching=VM(many-to-one,['test', 'blub'],on=False,['blub'],None,None))",
    ),
    (
        "foo / ignoring(test,blub) group_left(bar) bar",
        "BinaryExpr@0:45(op=/,lhs=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),rhs=VectorSelector@42:45(name=bar,matchers=[__name__='bar']),matching=VM(many-to-one,['test', 'blub'],on=False,['bar'],None,None))",
    ),
    (
        "foo - on(test,blub) group_right(bar,foo) bar",
        "BinaryExpr@0:44(op=-,lhs=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),rhs=VectorSelector@41:44(name=bar,matchers=[__name__='bar']),matching=VM(one-to-many,['test', 'blub'],on=True,['bar', 'foo'],None,None))",
    ),
    (
        "foo - ignoring(test,blub) group_right(bar,foo) bar",
        "BinaryExpr@0:50(op=-,lhs=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),rhs=VectorSelector@47:50(name=bar,matchers=[__name__='bar']),matching=VM(one-to-many,['test', 'blub'],on=False,['bar', 'foo'],None,None))",
    ),
    ("foo", "VectorSelector@0:3(name=foo,matchers=[__name__='foo'])"),
    ("min", "VectorSelector@0:3(name=min,matchers=[__name__='min'])"),
    ("foo offset 5m", "VectorSelector@0:13(name=foo,matchers=[__name__='foo'],offset_ms=300000)"),
    ("foo offset -7m", "VectorSelector@0:14(name=foo,matchers=[__name__='foo'],offset_ms=-420000)"),
    (
        "foo offset +(5)",
        "VectorSelector@0:15(name=foo,matchers=[__name__='foo'],offset_expr=DurationExpr@13:14(op=+,rhs=NumberLiteral@13:14(val=5.0),wrapped=True))",
    ),
    (
        "foo offset -(5)",
        "VectorSelector@0:15(name=foo,matchers=[__name__='foo'],offset_expr=DurationExpr@11:14(op=-,rhs=DurationExpr@13:14(op=+,rhs=NumberLiteral@13:14(val=5.0),wrapped=True)))",
    ),
    (
        "foo offset (5)",
        "VectorSelector@0:14(name=foo,matchers=[__name__='foo'],offset_expr=DurationExpr@11:14(op=+,rhs=NumberLiteral@12:13(val=5.0),wrapped=True))",
    ),
    (
        "foo[(5s)]",
        "MatrixSelector@0:9(vector_selector=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),range_expr=DurationExpr@4:8(op=+,rhs=NumberLiteral@5:7(val=5.0,duration=True),wrapped=True))",
    ),
    ("foo OFFSET 1h30m", "VectorSelector@0:16(name=foo,matchers=[__name__='foo'],offset_ms=5400000)"),
    ("foo OFFSET 1m30ms", "VectorSelector@0:17(name=foo,matchers=[__name__='foo'],offset_ms=60030)"),
    (
        "foo @ 1603774568",
        "VectorSelector@0:16(name=foo,matchers=[__name__='foo'],timestamp_ms=1603774568000)",
    ),
    ("foo @ -100", "VectorSelector@0:10(name=foo,matchers=[__name__='foo'],timestamp_ms=-100000)"),
    ("foo @ .3", "VectorSelector@0:8(name=foo,matchers=[__name__='foo'],timestamp_ms=300)"),
    ("foo @ 3.", "VectorSelector@0:8(name=foo,matchers=[__name__='foo'],timestamp_ms=3000)"),
    ("foo @ 3.33", "VectorSelector@0:10(name=foo,matchers=[__name__='foo'],timestamp_ms=3330)"),
    ("foo @ 3e2", "VectorSelector@0:9(name=foo,matchers=[__name__='foo'],timestamp_ms=300000)"),
    ("foo @ 3e-1", "VectorSelector@0:10(name=foo,matchers=[__name__='foo'],timestamp_ms=300)"),
    ("foo @ 0xA", "VectorSelector@0:9(name=foo,matchers=[__name__='foo'],timestamp_ms=10000)"),
    ("foo @ -3.3e1", "VectorSelector@0:12(name=foo,matchers=[__name__='foo'],timestamp_ms=-33000)"),
    ('foo:bar{a="bc"}', "VectorSelector@0:15(name=foo:bar,matchers=[a='bc',__name__='foo:bar'])"),
    ('{"foo"}', "VectorSelector@0:7(name=,matchers=[__name__='foo'])"),
    (
        "{'foo\\'bar', 'a\\\\dos\\\\path'='boo\\\\urns'}",
        "VectorSelector@0:40(name=,matchers=[__name__=\"foo'bar\",a\\dos\\path='boo\\\\urns'])",
    ),
    ('{"foo", a="bc"}', "VectorSelector@0:15(name=,matchers=[__name__='foo',a='bc'])"),
    ("foo{NaN='bc'}", "VectorSelector@0:13(name=foo,matchers=[NaN='bc',__name__='foo'])"),
    ("foo{bar='}'}", "VectorSelector@0:12(name=foo,matchers=[bar='}',__name__='foo'])"),
    (
        'foo{a="b", foo!="bar", test=~"test", bar!~"baz"}',
        "VectorSelector@0:48(name=foo,matchers=[a='b',foo!='bar',test=~'test',bar!~'baz',__name__='foo'])",
    ),
    (
        'foo{a="b", foo!="bar", test=~"test", bar!~"baz",}',
        "VectorSelector@0:49(name=foo,matchers=[a='b',foo!='bar',test=~'test',bar!~'baz',__name__='foo'])",
    ),
    (
        "test[1000ms]",
        "MatrixSelector@0:12(vector_selector=VectorSelector@0:4(name=test,matchers=[__name__='test']),range_ms=1000)",
    ),
    (
        "test[1001ms]",
        "MatrixSelector@0:12(vector_selector=VectorSelector@0:4(name=test,matchers=[__name__='test']),range_ms=1001)",
    ),
    (
        "test[1002ms]",
        "MatrixSelector@0:12(vector_selector=VectorSelector@0:4(name=test,matchers=[__name__='test']),range_ms=1002)",
    ),
    (
        "test[5s]",
        "MatrixSelector@0:8(vector_selector=VectorSelector@0:4(name=test,matchers=[__name__='test']),range_ms=5000)",
    ),
    (
        "test[5m]",
        "MatrixSelector@0:8(vector_selector=VectorSelector@0:4(name=test,matchers=[__name__='test']),range_ms=300000)",
    ),
    (
        "foo[5m30s]",
        "MatrixSelector@0:10(vector_selector=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),range_ms=330000)",
    ),
    (
        "test[5h] OFFSET 5m",
        "MatrixSelector@0:18(vector_selector=VectorSelector@0:4(name=test,matchers=[__name__='test'],offset_ms=300000),range_ms=18000000)",
    ),
    (
        "test[5d] OFFSET 10s",
        "MatrixSelector@0:19(vector_selector=VectorSelector@0:4(name=test,matchers=[__name__='test'],offset_ms=10000),range_ms=432000000)",
    ),
    (
        "test[5w] offset 2w",
        "MatrixSelector@0:18(vector_selector=VectorSelector@0:4(name=test,matchers=[__name__='test'],offset_ms=1209600000),range_ms=3024000000)",
    ),
    (
        'test{a="b"}[5y] OFFSET 3d',
        "MatrixSelector@0:25(vector_selector=VectorSelector@0:11(name=test,matchers=[a='b',__name__='test'],offset_ms=259200000),range_ms=157680000000)",
    ),
    (
        'test{a="b"}[5m] OFFSET 3600',
        "MatrixSelector@0:27(vector_selector=VectorSelector@0:11(name=test,matchers=[a='b',__name__='test'],offset_ms=3600000),range_ms=300000)",
    ),
    (
        "foo[3ms] @ 2.345",
        "MatrixSelector@0:16(vector_selector=VectorSelector@0:3(name=foo,matchers=[__name__='foo'],timestamp_ms=2345),range_ms=3)",
    ),
    (
        "foo[4s180ms] @ 2.345",
        "MatrixSelector@0:20(vector_selector=VectorSelector@0:3(name=foo,matchers=[__name__='foo'],timestamp_ms=2345),range_ms=4180)",
    ),
    (
        "foo[4.18] @ 2.345",
        "MatrixSelector@0:17(vector_selector=VectorSelector@0:3(name=foo,matchers=[__name__='foo'],timestamp_ms=2345),range_ms=4180)",
    ),
    (
        "foo[4s18ms] @ 2.345",
        "MatrixSelector@0:19(vector_selector=VectorSelector@0:3(name=foo,matchers=[__name__='foo'],timestamp_ms=2345),range_ms=4018)",
    ),
    (
        "foo[4.018] @ 2.345",
        "MatrixSelector@0:18(vector_selector=VectorSelector@0:3(name=foo,matchers=[__name__='foo'],timestamp_ms=2345),range_ms=4018)",
    ),
    (
        'test{a="b"}[5y] @ 1603774699',
        "MatrixSelector@0:28(vector_selector=VectorSelector@0:11(name=test,matchers=[a='b',__name__='test'],timestamp_ms=1603774699000),range_ms=157680000000)",
    ),
    (
        "test[5]",
        "MatrixSelector@0:7(vector_selector=VectorSelector@0:4(name=test,matchers=[__name__='test']),range_ms=5000)",
    ),
    (
        "some_metric[5m] @ 1m",
        "MatrixSelector@0:20(vector_selector=VectorSelector@0:11(name=some_metric,matchers=[__name__='some_metric'],timestamp_ms=60000),range_ms=300000)",
    ),
    (
        "sum by (foo)(some_metric)",
        "AggregateExpr@0:25(op=sum,expr=VectorSelector@13:24(name=some_metric,matchers=[__name__='some_metric']),grouping=['foo'])",
    ),
    (
        "sum by (anchored)(some_metric)",
        "AggregateExpr@0:30(op=sum,expr=VectorSelector@18:29(name=some_metric,matchers=[__name__='some_metric']),grouping=['anchored'])",
    ),
    (
        "sum by (smoothed)(some_metric)",
        "AggregateExpr@0:30(op=sum,expr=VectorSelector@18:29(name=some_metric,matchers=[__name__='some_metric']),grouping=['smoothed'])",
    ),
    (
        'sum by ("foo bar")({"some.metric"})',
        "AggregateExpr@0:35(op=sum,expr=VectorSelector@19:34(name=,matchers=[__name__='some.metric']),grouping=['foo bar'])",
    ),
    (
        'sum by ("foo", bar, \'baz\')({"some.metric"})',
        "AggregateExpr@0:43(op=sum,expr=VectorSelector@27:42(name=,matchers=[__name__='some.metric']),grouping=['foo','bar','baz'])",
    ),
    (
        "avg by (foo)(some_metric)",
        "AggregateExpr@0:25(op=avg,expr=VectorSelector@13:24(name=some_metric,matchers=[__name__='some_metric']),grouping=['foo'])",
    ),
    (
        "max by (foo)(some_metric)",
        "AggregateExpr@0:25(op=max,expr=VectorSelector@13:24(name=some_metric,matchers=[__name__='some_metric']),grouping=['foo'])",
    ),
    (
        "sum without (foo) (some_metric)",
        "AggregateExpr@0:31(op=sum,expr=VectorSelector@19:30(name=some_metric,matchers=[__name__='some_metric']),grouping=['foo'],without=True)",
    ),
    (
        "sum (some_metric) without (foo)",
        "AggregateExpr@0:31(op=sum,expr=VectorSelector@5:16(name=some_metric,matchers=[__name__='some_metric']),grouping=['foo'],without=True)",
    ),
    (
        "stddev(some_metric)",
        "AggregateExpr@0:19(op=stddev,expr=VectorSelector@7:18(name=some_metric,matchers=[__name__='some_metric']))",
    ),
    (
        "stdvar by (foo)(some_metric)",
        "AggregateExpr@0:28(op=stdvar,expr=VectorSelector@16:27(name=some_metric,matchers=[__name__='some_metric']),grouping=['foo'])",
    ),
    (
        "sum by ()(some_metric)",
        "AggregateExpr@0:22(op=sum,expr=VectorSelector@10:21(name=some_metric,matchers=[__name__='some_metric']))",
    ),
    (
        "sum by (foo,bar,)(some_metric)",
        "AggregateExpr@0:30(op=sum,expr=VectorSelector@18:29(name=some_metric,matchers=[__name__='some_metric']),grouping=['foo','bar'])",
    ),
    (
        "sum by (foo,)(some_metric)",
        "AggregateExpr@0:26(op=sum,expr=VectorSelector@14:25(name=some_metric,matchers=[__name__='some_metric']),grouping=['foo'])",
    ),
    (
        "topk(5, some_metric)",
        "AggregateExpr@0:20(op=topk,expr=VectorSelector@8:19(name=some_metric,matchers=[__name__='some_metric']),param=NumberLiteral@5:6(val=5.0))",
    ),
    (
        'count_values("value", some_metric)',
        "AggregateExpr@0:34(op=count_values,expr=VectorSelector@22:33(name=some_metric,matchers=[__name__='some_metric']),param=StringLiteral@13:20(val=value))",
    ),
    ("time()", "Call@0:6(time;)"),
    (
        'floor(some_metric{foo!="bar"})',
        "Call@0:30(floor;VectorSelector@6:29(name=some_metric,matchers=[foo!='bar',__name__='some_metric']))",
    ),
    (
        "rate(some_metric[5m])",
        "Call@0:21(rate;MatrixSelector@5:20(vector_selector=VectorSelector@5:16(name=some_metric,matchers=[__name__='some_metric']),range_ms=300000))",
    ),
    (
        "round(some_metric)",
        "Call@0:18(round;VectorSelector@6:17(name=some_metric,matchers=[__name__='some_metric']))",
    ),
    (
        "round(some_metric, 5)",
        "Call@0:21(round;VectorSelector@6:17(name=some_metric,matchers=[__name__='some_metric']);NumberLiteral@19:20(val=5.0))",
    ),
    ("sum(sum)", "AggregateExpr@0:8(op=sum,expr=VectorSelector@4:7(name=sum,matchers=[__name__='sum']))"),
    (
        "a + sum",
        "BinaryExpr@0:7(op=+,lhs=VectorSelector@0:1(name=a,matchers=[__name__='a']),rhs=VectorSelector@4:7(name=sum,matchers=[__name__='sum']),matching=VM(one-to-one,[],on=False,[],None,None))",
    ),
    (
        '"double-quoted string \\" with escaped quote"',
        'StringLiteral@0:44(val=double-quoted string " with escaped quote)',
    ),
    (
        "'single-quoted string \\' with escaped quote'",
        "StringLiteral@0:44(val=single-quoted string ' with escaped quote)",
    ),
    ("`backtick-quoted string`", "StringLiteral@0:24(val=backtick-quoted string)"),
    (
        '"\\a\\b\\f\\n\\r\\t\\v\\\\\\" - \\xFF\\377\\u1234\\U00010111\\U0001011111☺"',
        'StringLiteral@0:60(val=\x07\x08\x0c\n\r\t\x0b\\" - \udcff\udcffሴ𐄑𐄑11☺)',
    ),
    (
        "'\\a\\b\\f\\n\\r\\t\\v\\\\\\' - \\xFF\\377\\u1234\\U00010111\\U0001011111☺'",
        "StringLiteral@0:60(val=\x07\x08\x0c\n\r\t\x0b\\' - \udcff\udcffሴ𐄑𐄑11☺)",
    ),
    (
        'foo{bar="baz"}[10m:6s]',
        "SubqueryExpr@0:22(expr=VectorSelector@0:14(name=foo,matchers=[bar='baz',__name__='foo']),range_ms=600000,step_ms=6000)",
    ),
    (
        'foo{bar="baz"}[10m5s:1h6ms]',
        "SubqueryExpr@0:27(expr=VectorSelector@0:14(name=foo,matchers=[bar='baz',__name__='foo']),range_ms=605000,step_ms=3600006)",
    ),
    (
        "foo[10m:]",
        "SubqueryExpr@0:9(expr=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),range_ms=600000)",
    ),
    (
        'min_over_time(rate(foo{bar="baz"}[2s])[5m:5s])',
        "Call@0:46(min_over_time;SubqueryExpr@14:45(expr=Call@14:38(rate;MatrixSelector@19:37(vector_selector=VectorSelector@19:33(name=foo,matchers=[bar='baz',__name__='foo']),range_ms=2000)),range_ms=300000,step_ms=5000))",
    ),
    (
        'min_over_time(rate(foo{bar="baz"}[2s])[5m:])[4m:3s]',
        "SubqueryExpr@0:51(expr=Call@0:44(min_over_time;SubqueryExpr@14:43(expr=Call@14:38(rate;MatrixSelector@19:37(vector_selector=VectorSelector@19:33(name=foo,matchers=[bar='baz',__name__='foo']),range_ms=2000)),range_ms=300000)),range_ms=240000,step_ms=3000)",
    ),
    (
        'min_over_time(rate(foo{bar="baz"}[2s])[5m:] offset 4m)[4m:3s]',
        "SubqueryExpr@0:61(expr=Call@0:54(min_over_time;SubqueryExpr@14:53(expr=Call@14:38(rate;MatrixSelector@19:37(vector_selector=VectorSelector@19:33(name=foo,matchers=[bar='baz',__name__='foo']),range_ms=2000)),range_ms=300000,offset_ms=240000)),range_ms=240000,step_ms=3000)",
    ),
    (
        'min_over_time(rate(foo{bar="baz"}[2s])[5m:] @ 1603775091)[4m:3s]',
        "SubqueryExpr@0:64(expr=Call@0:57(min_over_time;SubqueryExpr@14:56(expr=Call@14:38(rate;MatrixSelector@19:37(vector_selector=VectorSelector@19:33(name=foo,matchers=[bar='baz',__name__='foo']),range_ms=2000)),range_ms=300000,timestamp_ms=1603775091000)),range_ms=240000,step_ms=3000)",
    ),
    (
        'min_over_time(rate(foo{bar="baz"}[2s])[5m:] @ -160377509)[4m:3s]',
        "SubqueryExpr@0:64(expr=Call@0:57(min_over_time;SubqueryExpr@14:56(expr=Call@14:38(rate;MatrixSelector@19:37(vector_selector=VectorSelector@19:33(name=foo,matchers=[bar='baz',__name__='foo']),range_ms=2000)),range_ms=300000,timestamp_ms=-160377509000)),range_ms=240000,step_ms=3000)",
    ),
    (
        "sum without(and, by, avg, count, alert, annotations)(some_metric) [30m:10s]",
        "SubqueryExpr@0:75(expr=AggregateExpr@0:65(op=sum,expr=VectorSelector@53:64(name=some_metric,matchers=[__name__='some_metric']),grouping=['and','by','avg','count','alert','annotations'],without=True),range_ms=1800000,step_ms=10000)",
    ),
    (
        "some_metric OFFSET 1m [10m:5s]",
        "SubqueryExpr@0:30(expr=VectorSelector@0:21(name=some_metric,matchers=[__name__='some_metric'],offset_ms=60000),range_ms=600000,step_ms=5000)",
    ),
    (
        "some_metric @ 123 [10m:5s]",
        "SubqueryExpr@0:26(expr=VectorSelector@0:17(name=some_metric,matchers=[__name__='some_metric'],timestamp_ms=123000),range_ms=600000,step_ms=5000)",
    ),
    (
        "some_metric @ 123 offset 1m [10m:5s]",
        "SubqueryExpr@0:36(expr=VectorSelector@0:27(name=some_metric,matchers=[__name__='some_metric'],offset_ms=60000,timestamp_ms=123000),range_ms=600000,step_ms=5000)",
    ),
    (
        "some_metric offset 1m @ 123 [10m:5s]",
        "SubqueryExpr@0:36(expr=VectorSelector@0:27(name=some_metric,matchers=[__name__='some_metric'],offset_ms=60000,timestamp_ms=123000),range_ms=600000,step_ms=5000)",
    ),
    (
        "some_metric[10m:5s] offset 1m @ 123",
        "SubqueryExpr@0:35(expr=VectorSelector@0:11(name=some_metric,matchers=[__name__='some_metric']),range_ms=600000,step_ms=5000,offset_ms=60000,timestamp_ms=123000)",
    ),
    (
        '(foo + bar{nm="val"})[5m:]',
        "SubqueryExpr@0:26(expr=ParenExpr@0:21(expr=BinaryExpr@1:20(op=+,lhs=VectorSelector@1:4(name=foo,matchers=[__name__='foo']),rhs=VectorSelector@7:20(name=bar,matchers=[nm='val',__name__='bar']),matching=VM(one-to-one,[],on=False,[],None,None))),range_ms=300000)",
    ),
    (
        '(foo + bar{nm="val"})[5m:] offset 10m',
        "SubqueryExpr@0:37(expr=ParenExpr@0:21(expr=BinaryExpr@1:20(op=+,lhs=VectorSelector@1:4(name=foo,matchers=[__name__='foo']),rhs=VectorSelector@7:20(name=bar,matchers=[nm='val',__name__='bar']),matching=VM(one-to-one,[],on=False,[],None,None))),range_ms=300000,offset_ms=600000)",
    ),
    (
        '(foo + bar{nm="val"} @ 1234)[5m:] @ 1603775019',
        "SubqueryExpr@0:46(expr=ParenExpr@0:28(expr=BinaryExpr@1:27(op=+,lhs=VectorSelector@1:4(name=foo,matchers=[__name__='foo']),rhs=VectorSelector@7:27(name=bar,matchers=[nm='val',__name__='bar'],timestamp_ms=1234000),matching=VM(one-to-one,[],on=False,[],None,None))),range_ms=300000,timestamp_ms=1603775019000)",
    ),
    ("foo @ start()", "VectorSelector@0:13(name=foo,matchers=[__name__='foo'],start_or_end=start)"),
    ("foo @ end()", "VectorSelector@0:11(name=foo,matchers=[__name__='foo'],start_or_end=end)"),
    (
        "test[5y] @ start()",
        "MatrixSelector@0:18(vector_selector=VectorSelector@0:4(name=test,matchers=[__name__='test'],start_or_end=start),range_ms=157680000000)",
    ),
    (
        "test[5y] @ end()",
        "MatrixSelector@0:16(vector_selector=VectorSelector@0:4(name=test,matchers=[__name__='test'],start_or_end=end),range_ms=157680000000)",
    ),
    (
        "foo[10m:6s] @ start()",
        "SubqueryExpr@0:21(expr=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),range_ms=600000,step_ms=6000,start_or_end=start)",
    ),
    (
        "foo[10m:6s] @ end()",
        "SubqueryExpr@0:19(expr=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),range_ms=600000,step_ms=6000,start_or_end=end)",
    ),
    ("start()", "Call@0:7(start;)"),
    ("end()", "Call@0:5(end;)"),
    ("start", "VectorSelector@0:5(name=start,matchers=[__name__='start'])"),
    ("end", "VectorSelector@0:3(name=end,matchers=[__name__='end'])"),
    ('start{end="foo"}', "VectorSelector@0:16(name=start,matchers=[end='foo',__name__='start'])"),
    ('end{start="foo"}', "VectorSelector@0:16(name=end,matchers=[start='foo',__name__='end'])"),
    (
        "foo unless on(start) bar",
        "BinaryExpr@0:24(op=unless,lhs=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),rhs=VectorSelector@21:24(name=bar,matchers=[__name__='bar']),matching=VM(many-to-many,['start'],on=True,[],None,None))",
    ),
    (
        "foo unless on(end) bar",
        "BinaryExpr@0:22(op=unless,lhs=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),rhs=VectorSelector@19:22(name=bar,matchers=[__name__='bar']),matching=VM(many-to-many,['end'],on=True,[],None,None))",
    ),
    (
        "info(rate(http_request_counter_total{}[5m]))",
        "Call@0:44(info;Call@5:43(rate;MatrixSelector@10:42(vector_selector=VectorSelector@10:38(name=http_request_counter_total,matchers=[__name__='http_request_counter_total']),range_ms=300000)))",
    ),
    (
        'info(http_request_counter_total{namespace="zzz"}, {foo="bar", bar="baz"})',
        "Call@0:73(info;VectorSelector@5:48(name=http_request_counter_total,matchers=[namespace='zzz',__name__='http_request_counter_total']);VectorSelector@50:72(name=,matchers=[foo='bar',bar='baz']))",
    ),
    (
        "foo[11s+10s-5*2^2]",
        "MatrixSelector@0:18(vector_selector=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),range_expr=DurationExpr@4:17(op=-,lhs=DurationExpr@4:11(op=+,lhs=NumberLiteral@4:7(val=11.0,duration=True),rhs=NumberLiteral@8:11(val=10.0,duration=True)),rhs=DurationExpr@12:17(op=*,lhs=NumberLiteral@12:13(val=5.0),rhs=DurationExpr@14:17(op=^,lhs=NumberLiteral@14:15(val=2.0),rhs=NumberLiteral@16:17(val=2.0)))))",
    ),
    (
        "foo[-(10s-5s)+20s]",
        "MatrixSelector@0:18(vector_selector=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),range_expr=DurationExpr@4:17(op=+,lhs=DurationExpr@4:12(op=-,rhs=DurationExpr@6:12(op=-,lhs=NumberLiteral@6:9(val=10.0,duration=True),rhs=NumberLiteral@10:12(val=5.0,duration=True),wrapped=True)),rhs=NumberLiteral@14:17(val=20.0,duration=True)))",
    ),
    (
        "foo[-10s+15s]",
        "MatrixSelector@0:13(vector_selector=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),range_expr=DurationExpr@4:12(op=+,lhs=NumberLiteral@4:8(val=-10.0,duration=True),rhs=NumberLiteral@9:12(val=15.0,duration=True)))",
    ),
    (
        "foo[step()]",
        "MatrixSelector@0:11(vector_selector=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),range_expr=DurationExpr@4:10(op=step))",
    ),
    (
        "foo[  -  step  (  )  ]",
        "MatrixSelector@0:22(vector_selector=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),range_expr=DurationExpr@6:19(op=-,rhs=DurationExpr@9:19(op=step)))",
    ),
    (
        "foo[   step  (  )  ]",
        "MatrixSelector@0:20(vector_selector=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),range_expr=DurationExpr@7:17(op=step))",
    ),
    (
        "foo[-step()]",
        "MatrixSelector@0:12(vector_selector=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),range_expr=DurationExpr@4:11(op=-,rhs=DurationExpr@5:11(op=step)))",
    ),
    (
        "foo offset step()",
        "VectorSelector@0:17(name=foo,matchers=[__name__='foo'],offset_expr=DurationExpr@11:17(op=step))",
    ),
    (
        "foo offset -step()",
        "VectorSelector@0:18(name=foo,matchers=[__name__='foo'],offset_expr=DurationExpr@11:18(op=-,rhs=DurationExpr@12:18(op=step)))",
    ),
    (
        "foo[max_of(step(),5s)]",
        "MatrixSelector@0:22(vector_selector=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),range_expr=DurationExpr@4:21(op=max_of,lhs=DurationExpr@11:17(op=step),rhs=NumberLiteral@18:20(val=5.0,duration=True)))",
    ),
    (
        "foo offset max_of(step(),5s)",
        "VectorSelector@0:28(name=foo,matchers=[__name__='foo'],offset_expr=DurationExpr@11:28(op=max_of,lhs=DurationExpr@18:24(op=step),rhs=NumberLiteral@25:27(val=5.0,duration=True)))",
    ),
    (
        "foo offset -min_of(5s,step()+8s)",
        "VectorSelector@0:32(name=foo,matchers=[__name__='foo'],offset_expr=DurationExpr@11:32(op=-,rhs=DurationExpr@12:32(op=min_of,lhs=NumberLiteral@19:21(val=5.0,duration=True),rhs=DurationExpr@22:31(op=+,lhs=DurationExpr@22:28(op=step),rhs=NumberLiteral@29:31(val=8.0,duration=True)))))",
    ),
    (
        "foo[range()]",
        "MatrixSelector@0:12(vector_selector=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),range_expr=DurationExpr@4:11(op=range))",
    ),
    (
        "foo[2m/range()]",
        "MatrixSelector@0:15(vector_selector=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),range_expr=DurationExpr@4:14(op=/,lhs=NumberLiteral@4:6(val=120.0,duration=True),rhs=DurationExpr@7:14(op=range)))",
    ),
    (
        "foo[-range()]",
        "MatrixSelector@0:13(vector_selector=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),range_expr=DurationExpr@4:12(op=-,rhs=DurationExpr@5:12(op=range)))",
    ),
    (
        "foo offset range()",
        "VectorSelector@0:18(name=foo,matchers=[__name__='foo'],offset_expr=DurationExpr@11:18(op=range))",
    ),
    (
        "foo offset -range()",
        "VectorSelector@0:19(name=foo,matchers=[__name__='foo'],offset_expr=DurationExpr@11:19(op=-,rhs=DurationExpr@12:19(op=range)))",
    ),
    (
        "foo[max_of(range(),5s)]",
        "MatrixSelector@0:23(vector_selector=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),range_expr=DurationExpr@4:22(op=max_of,lhs=DurationExpr@11:18(op=range),rhs=NumberLiteral@19:21(val=5.0,duration=True)))",
    ),
    (
        "foo[4s+4s:1s*2] offset (5s-8)",
        "SubqueryExpr@0:29(expr=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),range_expr=DurationExpr@4:9(op=+,lhs=NumberLiteral@4:6(val=4.0,duration=True),rhs=NumberLiteral@7:9(val=4.0,duration=True)),step_expr=DurationExpr@10:14(op=*,lhs=NumberLiteral@10:12(val=1.0,duration=True),rhs=NumberLiteral@13:14(val=2.0)),offset_expr=DurationExpr@24:28(op=-,lhs=NumberLiteral@24:26(val=5.0,duration=True),rhs=NumberLiteral@27:28(val=8.0),wrapped=True))",
    ),
    (
        "foo offset 5s-8",
        "BinaryExpr@0:15(op=-,lhs=VectorSelector@0:13(name=foo,matchers=[__name__='foo'],offset_ms=5000),rhs=NumberLiteral@14:15(val=8.0))",
    ),
    (
        "rate(foo[2m+2m])",
        "Call@0:16(rate;MatrixSelector@5:15(vector_selector=VectorSelector@5:8(name=foo,matchers=[__name__='foo']),range_expr=DurationExpr@9:14(op=+,lhs=NumberLiteral@9:11(val=120.0,duration=True),rhs=NumberLiteral@12:14(val=120.0,duration=True))))",
    ),
    (
        "foo offset -1^1",
        "BinaryExpr@0:15(op=^,lhs=VectorSelector@0:13(name=foo,matchers=[__name__='foo'],offset_ms=-1000),rhs=NumberLiteral@14:15(val=1.0))",
    ),
    (
        "foo offset -(1^2)",
        "VectorSelector@0:17(name=foo,matchers=[__name__='foo'],offset_expr=DurationExpr@11:16(op=-,rhs=DurationExpr@13:16(op=^,lhs=NumberLiteral@13:14(val=1.0),rhs=NumberLiteral@15:16(val=2.0),wrapped=True)))",
    ),
    (
        "foo offset (-1^2)",
        "VectorSelector@0:17(name=foo,matchers=[__name__='foo'],offset_expr=DurationExpr@12:16(op=-,rhs=DurationExpr@13:16(op=^,lhs=NumberLiteral@13:14(val=1.0),rhs=NumberLiteral@15:16(val=2.0)),wrapped=True))",
    ),
    (
        "foo[-2^2]",
        "MatrixSelector@0:9(vector_selector=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),range_expr=DurationExpr@4:8(op=-,rhs=DurationExpr@5:8(op=^,lhs=NumberLiteral@5:6(val=2.0),rhs=NumberLiteral@7:8(val=2.0))))",
    ),
    (
        "foo[0+-2^2]",
        "MatrixSelector@0:11(vector_selector=VectorSelector@0:3(name=foo,matchers=[__name__='foo']),range_expr=DurationExpr@4:10(op=+,lhs=NumberLiteral@4:5(val=0.0),rhs=DurationExpr@6:10(op=-,rhs=DurationExpr@7:10(op=^,lhs=NumberLiteral@7:8(val=2.0),rhs=NumberLiteral@9:10(val=2.0)))))",
    ),
    (
        "(sum(foo))",
        "ParenExpr@0:10(expr=AggregateExpr@1:9(op=sum,expr=VectorSelector@5:8(name=foo,matchers=[__name__='foo'])))",
    ),
    (
        "(sum(foo) )",
        "ParenExpr@0:11(expr=AggregateExpr@1:9(op=sum,expr=VectorSelector@5:8(name=foo,matchers=[__name__='foo'])))",
    ),
    (
        "(sum(foo) by (bar))",
        "ParenExpr@0:19(expr=AggregateExpr@1:18(op=sum,expr=VectorSelector@5:8(name=foo,matchers=[__name__='foo']),grouping=['bar']))",
    ),
    (
        "(sum by (bar) (foo))",
        "ParenExpr@0:20(expr=AggregateExpr@1:19(op=sum,expr=VectorSelector@15:18(name=foo,matchers=[__name__='foo']),grouping=['bar']))",
    ),
    (
        "sum by (job)(rate(http_requests_total[30m]))",
        "AggregateExpr@0:44(op=sum,expr=Call@13:43(rate;MatrixSelector@18:42(vector_selector=VectorSelector@18:37(name=http_requests_total,matchers=[__name__='http_requests_total']),range_ms=1800000)),grouping=['job'])",
    ),
]

UPSTREAM_VALID = [query for query, _ in UPSTREAM_TREES]

UPSTREAM_ERRORS = [
    ("", "unknown position: parse error: no expression found in input"),
    ("# just a comment\n\n", "1:1: parse error: no expression found in input"),
    ("1+", "1:3: parse error: unexpected end of input"),
    (".", "1:1: parse error: unexpected character: '.'"),
    ("2.5.", '1:1: parse error: bad number or duration syntax: "2.5."'),
    ("100..4", '1:1: parse error: bad number or duration syntax: "100.."'),
    ("0deadbeef", '1:1: parse error: bad number or duration syntax: "0de"'),
    ("1 /", "1:4: parse error: unexpected end of input"),
    ("*1", "1:1: parse error: unexpected <op:*>"),
    ("(1))", "1:5: parse error: unexpected right parenthesis ')'"),
    ("((1)", "1:5: parse error: unclosed left parenthesis"),
    (
        "999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999",
        '1:1: parse error: error parsing number: strconv.ParseFloat: parsing "999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999": value out of range',
    ),
    ("(", "1:2: parse error: unclosed left parenthesis"),
    ("1 and 1", '1:1: parse error: set operator "and" not allowed in binary scalar expression'),
    ("1 == 1", "1:3: parse error: comparisons between scalars must use BOOL modifier"),
    ("1 or 1", '1:1: parse error: set operator "or" not allowed in binary scalar expression'),
    ("1 unless 1", '1:1: parse error: set operator "unless" not allowed in binary scalar expression'),
    ("1 !~ 1", "1:3: parse error: unexpected character after '!': '~'"),
    ("1 =~ 1", "1:3: parse error: unexpected character after '=': '~'"),
    (
        '-"string"',
        '1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got "string"',
    ),
    (
        "-test[5m]",
        '1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got "range vector"',
    ),
    ("*test", "1:1: parse error: unexpected <op:*>"),
    ("@@", "1:1: parse error: unexpected <op:@>"),
    (
        "1 offset 1d",
        "1:1: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
    ),
    ("foo offset 1s offset 2s", "1:1: parse error: offset may not be set multiple times"),
    ("a - on(b) ignoring(c) d", "1:11: parse error: unexpected <ignoring>"),
    ("foo and 1", '1:1: parse error: set operator "and" not allowed in binary scalar expression'),
    ("1 and foo", '1:1: parse error: set operator "and" not allowed in binary scalar expression'),
    ("foo or 1", '1:1: parse error: set operator "or" not allowed in binary scalar expression'),
    ("1 or foo", '1:1: parse error: set operator "or" not allowed in binary scalar expression'),
    ("foo unless 1", '1:1: parse error: set operator "unless" not allowed in binary scalar expression'),
    ("1 unless foo", '1:1: parse error: set operator "unless" not allowed in binary scalar expression'),
    ("1 or on(bar) foo", "1:1: parse error: vector matching only allowed between instant vectors"),
    ("foo == on(bar) 10", "1:1: parse error: vector matching only allowed between instant vectors"),
    ("foo + group_left(baz) bar", "1:7: parse error: unexpected <group_left>"),
    ("foo and on(bar) group_left(baz) bar", '1:1: parse error: no grouping allowed for "and" operation'),
    ("foo and on(bar) group_right(baz) bar", '1:1: parse error: no grouping allowed for "and" operation'),
    ("foo or on(bar) group_left(baz) bar", '1:1: parse error: no grouping allowed for "or" operation'),
    ("foo or on(bar) group_right(baz) bar", '1:1: parse error: no grouping allowed for "or" operation'),
    (
        "foo unless on(bar) group_left(baz) bar",
        '1:1: parse error: no grouping allowed for "unless" operation',
    ),
    (
        "foo unless on(bar) group_right(baz) bar",
        '1:1: parse error: no grouping allowed for "unless" operation',
    ),
    (
        'http_requests{group="production"} + on(instance) group_left(job,instance) cpu_count{type="smp"}',
        '1:35: parse error: label "instance" must not occur in ON and GROUP clause at once',
    ),
    ("foo + bool bar", "1:5: parse error: bool modifier can only be used on comparison operators"),
    ("foo + bool 10", "1:5: parse error: bool modifier can only be used on comparison operators"),
    ("foo and bool 10", "1:5: parse error: bool modifier can only be used on comparison operators"),
    (
        'http_requests{group="production"} + on(instance) group_left(job,instance) cpu_count{type="smp"}',
        '1:35: parse error: label "instance" must not occur in ON and GROUP clause at once',
    ),
    ("foo @ +Inf", "1:1: parse error: timestamp out of bounds for @ modifier: +Inf"),
    ("foo @ -Inf", "1:1: parse error: timestamp out of bounds for @ modifier: -Inf"),
    ("foo @ NaN", "1:1: parse error: timestamp out of bounds for @ modifier: NaN"),
    ("{", "1:2: parse error: unexpected end of input inside braces"),
    ("}", "1:1: parse error: unexpected character: '}'"),
    ("some{", "1:6: parse error: unexpected end of input inside braces"),
    ("some}", "1:5: parse error: unexpected character: '}'"),
    ("some_metric{a=b}", '1:15: parse error: unexpected identifier "b" in label matching, expected string'),
    ('some_metric{a:b="b"}', "1:14: parse error: unexpected character inside braces: ':'"),
    ('foo{a*"b"}', "1:6: parse error: unexpected character inside braces: '*'"),
    ('foo{a>="b"}', "1:6: parse error: unexpected character inside braces: '>'"),
    (
        "foo{gibberish}",
        '1:14: parse error: unexpected "}" in label matching, expected label matching operator',
    ),
    ("foo{1}", "1:5: parse error: unexpected character inside braces: '1'"),
    ("{}", "1:1: parse error: vector selector must contain at least one non-empty matcher"),
    ('{x=""}', "1:1: parse error: vector selector must contain at least one non-empty matcher"),
    ('{x=~".*"}', "1:1: parse error: vector selector must contain at least one non-empty matcher"),
    ('{x!~".+"}', "1:1: parse error: vector selector must contain at least one non-empty matcher"),
    ('{x!="a"}', "1:1: parse error: vector selector must contain at least one non-empty matcher"),
    ('foo{__name__="bar"}', '1:1: parse error: metric name must not be set twice: "foo" or "bar"'),
    ("foo{__name__= =}", '1:15: parse error: unexpected "=" in label matching, expected string'),
    ("foo{,}", '1:5: parse error: unexpected "," in label matching, expected identifier or "}"'),
    ('foo{__name__ == "bar"}', '1:15: parse error: unexpected "=" in label matching, expected string'),
    (
        'foo{__name__="bar" lol}',
        '1:20: parse error: unexpected identifier "lol" in label matching, expected "," or "}"',
    ),
    ('foo{"a"=}', '1:9: parse error: unexpected "}" in label matching, expected string'),
    ("foo[5mm]", '1:5: parse error: bad number or duration syntax: "5mm"'),
    ("foo[5m1]", '1:5: parse error: bad number or duration syntax: "5m1"'),
    ("foo[5m:1m1]", '1:8: parse error: bad number or duration syntax: "1m1"'),
    ("foo[5y1hs]", '1:5: parse error: unknown unit "hs" in duration "5y1hs"'),
    ("foo[5m1h]", '1:5: parse error: not a valid duration string: "5m1h"'),
    ("foo[5m1m]", '1:5: parse error: not a valid duration string: "5m1m"'),
    ("foo[0m]", "1:5: parse error: duration must be greater than 0"),
    ('foo["5m"]', "1:5: parse error: unexpected character in duration expression: '\"'"),
    (
        "foo[]",
        '1:5: parse error: unexpected "]" in subquery or range selector, expected number, duration, step(), or range()',
    ),
    ("foo[-1]", "1:5: parse error: duration must be greater than 0"),
    ("some_metric[5m] OFFSET 1mm", '1:24: parse error: bad number or duration syntax: "1mm"'),
    (
        "some_metric[5m] OFFSET",
        "1:23: parse error: unexpected end of input in offset, expected number, duration, step(), or range()",
    ),
    ("some_metric OFFSET 1m[5m]", "1:22: parse error: no offset modifiers allowed before range"),
    ("some_metric[5m] @", "1:18: parse error: unexpected end of input in @, expected timestamp"),
    ("some_metric @ 1234 [5m]", "1:20: parse error: no @ modifiers allowed before range"),
    ("some_metric @ start() [5m]", "1:23: parse error: no @ modifiers allowed before range"),
    ("some_metric @ end()[5m]", "1:20: parse error: no @ modifiers allowed before range"),
    ("some_metric offset step()[5m]", "1:26: parse error: no offset modifiers allowed before range"),
    ("(foo + bar)[5m]", "1:12: parse error: ranges only allowed for vector selectors"),
    ('sum by ("foo)(some_metric{})', "1:9: parse error: unterminated quoted string"),
    (
        "sum without(==)(some_metric)",
        "1:13: parse error: unexpected <op:==> in grouping opts, expected label",
    ),
    ("sum without(,)(some_metric)", '1:13: parse error: unexpected "," in grouping opts, expected label'),
    ("sum without(foo,,)(some_metric)", '1:17: parse error: unexpected "," in grouping opts, expected label'),
    ("sum some_metric by (test)", '1:5: parse error: unexpected identifier "some_metric"'),
    (
        "sum (some_metric) by test",
        '1:22: parse error: unexpected identifier "test" in grouping opts, expected "("',
    ),
    ("sum () by (test)", "1:1: parse error: no arguments for aggregate expression provided"),
    ("MIN keep_common (some_metric)", '1:5: parse error: unexpected identifier "keep_common"'),
    ("MIN (some_metric) keep_common", '1:19: parse error: unexpected identifier "keep_common"'),
    ("sum (some_metric) without (test) by (test)", "1:34: parse error: unexpected <by>"),
    ("sum without (test) (some_metric) by (test)", "1:34: parse error: unexpected <by>"),
    (
        "topk(some_metric)",
        "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1",
    ),
    ("topk(some_metric,)", "1:17: parse error: trailing commas not allowed in function call args"),
    (
        "topk(some_metric, other_metric)",
        "1:6: parse error: expected type scalar in aggregation parameter, got instant vector",
    ),
    (
        "count_values(5, other_metric)",
        "1:14: parse error: expected type string in aggregation parameter, got scalar",
    ),
    (
        "rate(some_metric[5m]) @ 1234",
        "1:1: parse error: @ modifier must be preceded by an instant vector selector or range vector selector or a subquery",
    ),
    ("floor()", '1:1: parse error: expected 1 argument(s) in call to "floor", got 0'),
    (
        "floor(some_metric, other_metric)",
        '1:1: parse error: expected 1 argument(s) in call to "floor", got 2',
    ),
    ("floor(some_metric, 1)", '1:1: parse error: expected 1 argument(s) in call to "floor", got 2'),
    ("floor(1)", '1:7: parse error: expected type instant vector in call to function "floor", got scalar'),
    (
        "hour(some_metric, some_metric, some_metric)",
        '1:1: parse error: expected at most 1 argument(s) in call to "hour", got 3',
    ),
    ("time(some_metric)", '1:1: parse error: expected 0 argument(s) in call to "time", got 1'),
    (
        "non_existent_function_far_bar()",
        '1:1: parse error: unknown function with name "non_existent_function_far_bar"',
    ),
    (
        "rate(some_metric)",
        '1:6: parse error: expected type range vector in call to function "rate", got instant vector',
    ),
    ("*1", "1:1: parse error: unexpected <op:*>"),
    ("-=", '1:2: parse error: unexpected "="'),
    ("++-++-+-+-<", "1:11: parse error: unexpected <op:<>"),
    ("e-+=/(0)", '1:4: parse error: unexpected "="'),
    ("a>b()", '1:3: parse error: unknown function with name "b"'),
    (
        "rate(avg)",
        '1:6: parse error: expected type range vector in call to function "rate", got instant vector',
    ),
    ("`\\``", "1:4: parse error: unterminated raw string"),
    ('"\\', "1:1: parse error: escape sequence not terminated"),
    ('"\\c"', "1:1: parse error: unknown escape sequence U+0063 'c'"),
    ('"\\x."', "1:1: parse error: illegal character U+002E '.' in escape sequence"),
    ('foo{bar="baz"}[', "1:16: parse error: unexpected end of input in duration expression"),
    (
        "test[5d] OFFSET 10s [10m:5s]",
        "1:1: parse error: subquery is only allowed on instant vector, got matrix instead",
    ),
    (
        '(foo + bar{nm="val"})[5m:][10m:5s]',
        "1:1: parse error: subquery is only allowed on instant vector, got matrix instead",
    ),
    ("rate(food[1m])[1h] offset 1h", "1:15: parse error: ranges only allowed for vector selectors"),
    ("rate(food[1m])[1h] @ 100", "1:15: parse error: ranges only allowed for vector selectors"),
    (
        'info(rate(http_request_counter_total{}[5m]), target_info{foo="bar"})',
        "1:46: parse error: expected label selectors only, got vector selector instead",
    ),
    (
        'info(http_request_counter_total{namespace="zzz"}, {foo="bar"} == 1)',
        "1:51: parse error: expected label selectors only",
    ),
    (
        "foo[step]",
        '1:9: parse error: unexpected "]" in subquery or range selector, expected number, duration, step(), or range()',
    ),
    ("foo[step()/0d]", "1:11: parse error: division by zero"),
    ("foo[5s/0d]", "1:7: parse error: division by zero"),
    ("foo offset (4d/0)", "1:15: parse error: division by zero"),
    ("foo[5s%0d]", "1:7: parse error: modulo by zero"),
    ("foo offset 9.5e10", "1:12: parse error: duration out of range"),
    ("foo[9.5e10]", "1:5: parse error: duration out of range"),
    ("sum(", "1:5: parse error: unclosed left parenthesis"),
    ("sum(rate(", "1:10: parse error: unclosed left parenthesis"),
    ("foo[5s x 5s]", "1:8: parse error: unexpected character: 'x', expected ':'"),
    ("foo[5s s 5s]", "1:8: parse error: unexpected character: 's', expected ':'"),
    ("1[5m] smoothed", "1:2: parse error: ranges only allowed for vector selectors"),
    ("1[5m] anchored", "1:2: parse error: ranges only allowed for vector selectors"),
]


def tree(node: Any) -> str:
    """A compact text form of a tree, positions included."""
    if node is None:
        return "nil"
    if isinstance(node, Matcher):
        return f"{node.name}{node.type.value}{node.value!r}"
    if isinstance(node, str):
        return repr(node)
    if isinstance(node, float):
        return "NaN" if math.isnan(node) else repr(node)
    if isinstance(node, A.VectorMatching):
        return (
            f"VM({node.card.value},{list(node.matching_labels)},on={node.on},{list(node.include)},"
            f"{node.fill_lhs},{node.fill_rhs})"
        )
    if isinstance(node, A.Call):
        return (
            f"Call@{node.pos.start}:{node.pos.end}({node.func.name};"
            + ";".join(tree(a) for a in node.args)
            + ")"
        )
    parts = []
    for f in fields(node):
        if f.name in ("pos", "bypass_empty_matcher_check"):
            continue
        value = getattr(node, f.name)
        if value in (None, False, 0, ()) and not isinstance(value, float):
            continue
        if isinstance(value, tuple):
            value = "[" + ",".join(tree(v) for v in value) + "]"
        elif isinstance(value, A.Expr | A.VectorMatching | float):
            value = tree(value)
        parts.append(f"{f.name}={value}")
    return f"{type(node).__name__}@{node.pos.start}:{node.pos.end}(" + ",".join(parts) + ")"


@pytest.mark.parametrize(("query", "expected"), UPSTREAM_TREES)
def test_upstream_tree(query: str, expected: str) -> None:
    """The tree (with positions) equals the one parse_test.go expects."""
    assert tree(parse_expr(query, features=FEATURES)) == expected


@pytest.mark.parametrize(("query", "message"), UPSTREAM_ERRORS)
def test_upstream_error(query: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_expr(query, features=FEATURES)
    assert str(info.value) == message
