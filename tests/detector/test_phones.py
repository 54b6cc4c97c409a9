"""find_phones on tricky OCR strings: what it must find, and what it must never invent."""

from __future__ import annotations

import pytest

from detector.analysis.phones import find_phones, normalise_phone

CASES: list[tuple[str, list[str]]] = [
    # --- mobiles, as printed
    ("13812345678", ["13812345678"]),
    ("138-1234-5678", ["13812345678"]),
    ("138 1234 5678", ["13812345678"]),
    ("138.1234.5678", ["13812345678"]),
    ("1381234 5678", ["13812345678"]),
    ("电话：13912345678", ["13912345678"]),
    ("Tel:15012345678", ["15012345678"]),
    ("TEL15012345678", ["15012345678"]),
    ("Tel13812345678", ["13812345678"]),  # the "l" of Tel is a letter, not a 1
    ("Tel l3812345678", ["13812345678"]),
    ("+86 138 1234 5678", ["13812345678"]),
    ("+8613812345678", ["13812345678"]),
    ("0086-13812345678", ["13812345678"]),
    # --- full width, OCR confusions inside digit runs
    ("１３８１２３４５６７８", ["13812345678"]),
    ("电话：１３８－１２３４－５６７８", ["13812345678"]),
    ("I38l234S678", ["13812345678"]),
    ("13B1234567B", ["13812345678"]),
    ("手机 139 O123 4567", ["13901234567"]),
    ("电话l8912345678", ["18912345678"]),
    ("177|234Z678", ["17712342678"]),
    ("NO.13812345678", ["13812345678"]),  # the O of NO touches a word: not a 0
    # --- landlines
    ("010-62345678", ["010-62345678"]),
    ("(010)62345678", ["010-62345678"]),
    ("（0755）8765 4321", ["0755-87654321"]),
    ("0755-8765432", ["0755-8765432"]),
    ("075587654321", ["0755-87654321"]),
    ("02162345678", ["021-62345678"]),
    ("O10-62345678", ["010-62345678"]),
    ("0371 6612 3456", ["0371-66123456"]),
    ("+86 10 6234 5678", ["010-62345678"]),
    # --- 400 / 800
    ("400-123-4567", ["4001234567"]),
    ("400 8123 456", ["4008123456"]),
    ("800-820-8820", ["8008208820"]),
    ("服务热线4006789012", ["4006789012"]),
    # --- several numbers, numbers next to dates and prices
    ("138 1234 5678 139 8765 4321", ["13812345678", "13987654321"]),
    ("联系电话13812345678，13987654321", ["13812345678", "13987654321"]),
    ("138-1234-5678/010-62345678", ["13812345678", "010-62345678"]),
    ("2024-05-06 13812345678", ["13812345678"]),
    ("15.8元 13812345678", ["13812345678"]),
    ("13812345678 13812345678", ["13812345678"]),  # duplicates once
    # --- negatives: too short, too long, cut runs, dates, prices, words
    ("1381234567", []),
    ("138123456789", []),  # 12 digits are not cut to 11
    ("13812345678901", []),
    ("138 1234 5678 9", []),  # a group hanging on: the run is 12 digits
    ("2 138 1234 5678", []),
    ("12812345678", []),  # 12x is not a mobile prefix
    ("23812345678", []),
    ("2024-05-06", []),
    ("2024.05.06 12:30", []),
    ("20240506", []),
    ("¥138.00", []),
    ("价格 99.80元", []),
    ("BOSS 138", []),
    ("SOS 110", []),
    ("HELLO WORLD", []),
    ("lOO", []),
    ("010-1234567", []),  # Beijing numbers have 8 digits
    ("010-12345678", []),  # local numbers never start with 1
    ("0755-123456", []),
    ("075-58765432", []),  # the grouping contradicts the 4-digit area code
    ("011-62345678", []),  # no such area code
    ("0400-343-2875", []),  # a 400 number with a stray 0: no 040x area code, and a 0 is not dropped
    ("0701-6234567", ["0701-6234567"]),
    ("400-123-456", []),
    ("ISBN 978-7-111-12345-6", []),
    ("11010519491231002X", []),
    ("QQ 123456789", []),
    ("I38lOSSBZ678", []),  # too many confusions to be sure
    ("", []),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[repr(t) for t, _ in CASES])
def test_find_phones(text: str, expected: list[str]) -> None:
    assert find_phones(text) == expected


def test_enough_cases() -> None:
    assert len(CASES) >= 30
    assert sum(1 for _, e in CASES if not e) >= 10


@pytest.mark.parametrize(
    ("digits", "expected"),
    [("13812345678", "13812345678"), ("01062345678", "010-62345678"), ("4001234567", "4001234567"), ("1234", None)],
)
def test_normalise_phone(digits: str, expected: str | None) -> None:
    assert normalise_phone(digits) == expected
