"""The contract as input/expected pairs: one CSV record each, keyed by its user id.

Each case is (user_id, csv fields after the user id, expected). ``expected`` is a dict of lake
columns for a kept row, or a reject reason string. docs/data-contract.md cites these.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

T0 = "1600000000"  # 2020-09-13T12:26:40Z
OK = "https://a.com/"


def row(
    url: str = OK,
    time: str = T0,
    browser: str = "Chrome",
    os: str = "Linux",
    res: str = "1920x1080",
) -> str:
    return ",".join([url, time, browser, os, res])


CASES: list[tuple[str, str, Any]] = [
    # trimming and missing values
    (
        "trim",
        " http://a.com/x ,\t1600000000 , Chrome ,Mac, 1x2 ",
        {
            "url": "http://a.com/x",
            "browser": "Chrome",
            "os": "Mac",
            "screen_width": 1,
            "screen_height": 2,
            "screen_resolution": "1x2",
        },
    ),
    (
        "blank-browser",
        row(browser="  ", os="", res=""),
        {"browser": None, "os": None, "screen_resolution": None, "screen_width": None},
    ),
    # time: UTC, microseconds, range
    (
        "t-int",
        row(time=T0),
        {
            "event_time": datetime(2020, 9, 13, 12, 26, 40),
            "event_date": date(2020, 9, 13),
            "year": 2020,
            "month": 9,
        },
    ),
    ("t-frac", row(time="1600000000.5"), {"event_time": datetime(2020, 9, 13, 12, 26, 40, 500000)}),
    (
        "t-micro",
        row(time="1600000000.1234567"),
        {"event_time": datetime(2020, 9, 13, 12, 26, 40, 123456)},
    ),
    ("t-plus", row(time="+1600000000."), {"event_time": datetime(2020, 9, 13, 12, 26, 40)}),
    ("t-low", row(time="946684800"), {"event_time": datetime(2000, 1, 1), "year": 2000}),
    (
        "t-high",
        row(time="4102444799.999999"),
        {"event_time": datetime(2099, 12, 31, 23, 59, 59, 999999), "year": 2099, "month": 12},
    ),
    (
        "t-jan-end",
        row(time="1706745599"),
        {"year": 2024, "month": 1, "event_date": date(2024, 1, 31)},
    ),
    (
        "t-feb-start",
        row(time="1706745600"),
        {"year": 2024, "month": 2, "event_date": date(2024, 2, 1)},
    ),
    ("t-below", row(time="946684799.999999"), "time_out_of_range"),
    ("t-above", row(time="4102444800"), "time_out_of_range"),
    ("t-millis", row(time="1600000000000"), "time_out_of_range"),
    ("t-negative", row(time="-1"), "time_out_of_range"),
    ("t-huge", row(time="99999999999999999999999"), "time_out_of_range"),
    ("t-text", row(time="yesterday"), "invalid_time"),
    ("t-exp", row(time="1.6e9"), "invalid_time"),
    ("t-missing", row(time=" "), "invalid_time"),
    # URL parts
    (
        "u-full",
        row(url="HTTP://User:Pa:ss@WWW.Example.COM:8080/A%20b/?q=1#f"),
        {
            "url": "HTTP://WWW.Example.COM:8080/A%20b/?q=1#f",
            "url_protocol": "http",
            "url_host": "www.example.com",
            "url_port": 8080,
            "url_path": "/A%20b/",
            "url_query": "q=1",
            "url_fragment": "f",
        },
    ),
    (
        "u-at-in-path",
        row(url="https://u:p@a.com/x@y"),
        {"url": "https://a.com/x@y", "url_host": "a.com", "url_path": "/x@y"},
    ),
    (
        "u-bare",
        row(url="https://a.com"),
        {"url_path": "/", "url_port": None, "url_query": None, "url_fragment": None},
    ),
    ("u-query-no-path", row(url="https://a.com?x=1"), {"url_path": "/", "url_query": "x=1"}),
    (
        "u-frag-qmark",
        row(url="https://a.com/p#frag?x=1&utm_source=no"),
        {
            "url_fragment": "frag?x=1&utm_source=no",
            "url_query": None,
            "utm_source": None,
            "query_params": None,
        },
    ),
    ("u-empty-query", row(url="https://a.com/p?#"), {"url_query": None, "url_fragment": None}),
    ("u-ipv6", row(url="https://[::1]:8443/x"), {"url_host": "[::1]", "url_port": 8443}),
    ("u-ipv6-v4", row(url="http://[::FFFF:1.2.3.4]/"), {"url_host": "[::ffff:1.2.3.4]"}),
    (
        "u-ipv6-port",
        row(url="http://[2001:DB8::1]:80/"),
        {"url_host": "[2001:db8::1]", "url_port": 80},
    ),
    ("u-ipv6-eight", row(url="http://[1:2:3:4:5:6:7:8]/"), {"url_host": "[1:2:3:4:5:6:7:8]"}),
    ("u-brackets-name", row(url="http://[abc]/"), "invalid_url"),
    ("u-brackets-ipv4", row(url="http://[1.2.3.4]/"), "invalid_url"),
    ("u-brackets-two-gaps", row(url="http://[::1::2]/"), "invalid_url"),
    ("u-brackets-colons", row(url="http://[:::]/"), "invalid_url"),
    ("u-brackets-nine", row(url="http://[1:2:3:4:5:6:7:8:9]/"), "invalid_url"),
    ("u-brackets-zone", row(url="http://[fe80::1%25eth0]/"), "invalid_url"),
    ("u-brackets-empty", row(url="http://[]/"), "invalid_url"),
    ("u-empty-port", row(url="https://a.com:/x"), {"url_port": None, "url_host": "a.com"}),
    ("u-ftp", row(url="ftp://a.com/x"), "invalid_url"),
    ("u-no-scheme", row(url="a.com/x"), "invalid_url"),
    ("u-relative", row(url="/x"), "invalid_url"),
    ("u-no-host", row(url="http:///x"), "invalid_url"),
    ("u-only-scheme", row(url="https://"), "invalid_url"),
    ("u-one-slash", row(url="http:/a.com"), "invalid_url"),
    ("u-mailto", row(url="mailto:x@y.com"), "invalid_url"),
    ("u-big-port", row(url="http://a.com:99999/"), "invalid_url"),
    ("u-text-port", row(url="http://a.com:abc/"), "invalid_url"),
    ("u-port-zero", row(url="http://a.com:0/"), "invalid_url"),
    ("u-port-zeros", row(url="http://a.com:0000/"), "invalid_url"),
    ("u-port-ipv6-zero", row(url="http://[::1]:0/"), "invalid_url"),
    ("u-port-65536", row(url="http://a.com:65536/"), "invalid_url"),
    ("u-port-plus", row(url="http://a.com:+80/"), "invalid_url"),
    ("u-port-minus", row(url="http://a.com:-1/"), "invalid_url"),
    ("u-port-mixed", row(url="http://a.com:8a/"), "invalid_url"),
    ("u-port-huge", row(url="http://a.com:99999999999999999999/"), "invalid_url"),
    ("u-port-one", row(url="http://a.com:1/"), {"url_port": 1, "url_host": "a.com"}),
    ("u-port-max", row(url="http://a.com:65535/"), {"url_port": 65535, "url_host": "a.com"}),
    ("u-port-lead-zero", row(url="http://a.com:080/"), {"url_port": 80, "url_host": "a.com"}),
    ("u-space", row(url="http://a b.com/"), "invalid_url"),
    ("u-missing", row(url=""), "invalid_url"),
    # UTM and query parameters
    (
        "q-utm",
        row(
            url="https://a.com/?utm_source=Goo+gle&UTM_Medium=c%2Bc&utm_campaign=100%off"
            "&utm_term=&utm_content"
        ),
        {
            "utm_source": "Goo gle",
            "utm_medium": "c+c",
            "utm_campaign": "100%off",
            "utm_term": None,
            "utm_content": None,
        },
    ),
    (
        "q-first-wins",
        row(url="https://a.com/?UTM_SOURCE=x&utm_source=y&utm_medium=m"),
        {"utm_source": "x", "utm_medium": "m"},
    ),
    ("q-encoded-key", row(url="https://a.com/?utm%5Fsource=z"), {"utm_source": "z"}),
    (
        "q-emoji",
        row(url="https://a.com/?utm_campaign=%F0%9F%8E%89launch"),
        {"utm_campaign": "\U0001f389launch"},
    ),
    ("q-bad-utf8", row(url="https://a.com/?utm_source=%FF"), {"utm_source": "%FF"}),
    (
        "q-map",
        row(url="https://a.com/?a=1&b=2&a=3&c&d=&e=x%3Dy&&k=a=b"),
        {"query_params": {"a": "1", "b": "2", "c": None, "d": None, "e": "x=y", "k": "a=b"}},
    ),
    (
        "q-raw-query",
        row(url="https://a.com/?utm_source=a%20b&x=1+2&y=%ZZ"),
        {
            "url_query": "utm_source=a%20b&x=1+2&y=%ZZ",
            "utm_source": "a b",
            "query_params": {"utm_source": "a b", "x": "1 2", "y": "%ZZ"},
        },
    ),
    (
        "q-controls",
        row(url="https://a.com/?utm_source=a%00b%0Ac&utm_medium=%0A&k%00=v%01"),
        {
            "url_query": "utm_source=a%00b%0Ac&utm_medium=%0A&k%00=v%01",
            "utm_source": "abc",
            "utm_medium": None,
            "query_params": {"utm_source": "abc", "utm_medium": None, "k": "v"},
        },
    ),
    # control characters: an id holding one is rejected; other fields lose them
    ("id\x00nul", row(), "invalid_user_id"),
    ("id\ttab", row(), "invalid_user_id"),
    ("id\x7fdel", row(), "invalid_user_id"),
    (
        "b-controls",
        row(browser="Chr\x00ome\x01", os="Li\x00n\x1bux"),
        {"browser": "Chrome", "os": "Linux"},
    ),
    ("b-only-controls", row(browser="\x00"), {"browser": None}),
    # screen sizes
    ("s-upper", row(res="1920X1080"), {"screen_width": 1920, "screen_height": 1080}),
    (
        "s-zero",
        row(res="0x1080"),
        {"screen_width": None, "screen_height": None, "screen_resolution": "0x1080"},
    ),
    ("s-text", row(res="big"), {"screen_width": None, "screen_height": None}),
    ("s-inner-space", row(res="800 x 600"), {"screen_width": None}),
    ("s-negative", row(res="-1x5"), {"screen_width": None}),
    # reject order: the first failing rule wins
    ("o-time-and-url", row(url="ftp://x", time="abc"), "invalid_time"),
    ("o-range-and-url", row(url="ftp://x", time="1"), "time_out_of_range"),
]

#: A row with no user id (and a bad time): missing_user_id comes first.
NO_USER = "," + row(time="abc")
