"""BR Code build + CRC throughput (codes/s) beside the floor of any builder, in the same run.

Baseline: filling a fixed, pre-validated payload template with the amount and txid by string
concatenation and closing it with the same C CRC — no validation, no normalisation. The
ratio says what the checks (key, amount, txid, ASCII name and city, EMV sizes) cost.

Also shown: the same CRC as a table-driven loop in pure Python, to justify the C one.
Target: >= 100,000 codes/s for build_static.
"""

from __future__ import annotations

import binascii
import time
from collections.abc import Callable
from decimal import Decimal

from pulso.pix.brcode import build_dynamic, build_static, parse_brcode

N_CODES = 200_000
TARGET_PER_S = 100_000
AMOUNTS = [Decimal(cents).scaleb(-2) for cents in range(100, 100_100, 100)]  # 1,000 amounts
TXIDS = [f"PDV{n:08d}" for n in range(N_CODES)]
KEY, NAME, CITY = "529.982.247-25", "Padaria São João", "São Paulo"
URL = "pix.example.com/qr/v2/cob/8b3da2f39a4140d1a91abd93113bd441"

_TABLE = [0] * 256
for _i in range(256):
    _c = _i << 8
    for _ in range(8):
        _c = ((_c << 1) ^ 0x1021) if _c & 0x8000 else _c << 1
    _TABLE[_i] = _c & 0xFFFF


def python_table_crc(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFF00) ^ _TABLE[(crc >> 8) ^ byte]
    return crc


def best_rate(run: Callable[[], int], repeats: int = 3) -> float:
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = run()
        best = max(best, n / (time.perf_counter() - t0))
    return best


def static_codes() -> int:
    for i, txid in enumerate(TXIDS):
        build_static(key=KEY, name=NAME, city=CITY, amount=AMOUNTS[i % 1000], txid=txid)
    return N_CODES


def static_codes_new_key_each() -> int:
    # A distinct e-mail key per code: the key cache never hits.
    for i, txid in enumerate(TXIDS[:50_000]):
        build_static(key=f"loja{i}@example.com", name=NAME, city=CITY, txid=txid)
    return 50_000


def dynamic_codes() -> int:
    for _ in TXIDS:
        build_dynamic(url=URL, name=NAME, city=CITY)
    return N_CODES


TEMPLATE_HEAD = "00020126330014br.gov.bcb.pix0111529982247255204000053039865407"
TEMPLATE_MIDDLE = "5802BR5916Padaria Sao Joao6009Sao Paulo62150511"


def baseline() -> int:
    for i, txid in enumerate(TXIDS):
        body = TEMPLATE_HEAD + f"{AMOUNTS[i % 1000]:07.2f}" + TEMPLATE_MIDDLE + txid + "6304"
        _ = body + f"{binascii.crc_hqx(body.encode(), 0xFFFF):04X}"
    return N_CODES


def python_crc_codes() -> int:
    payload = build_static(key=KEY, name=NAME, city=CITY, amount=Decimal("25.90"), txid="PDV1")
    data = payload[:-4].encode()
    for _ in range(20_000):
        python_table_crc(data)
    return 20_000


def parse_codes() -> int:
    payload = build_static(key=KEY, name=NAME, city=CITY, amount=Decimal("25.90"), txid="PDV1")
    for _ in range(50_000):
        parse_brcode(payload)
    return 50_000


def main() -> None:
    sample = build_static(key=KEY, name=NAME, city=CITY, amount=AMOUNTS[0], txid=TXIDS[0])
    assert parse_brcode(sample).txid == TXIDS[0]
    static = best_rate(static_codes)
    floor = best_rate(baseline)
    print(f"build_static (cached key):      {static:>12,.0f} codes/s")
    print(f"build_static (new key each):    {best_rate(static_codes_new_key_each):>12,.0f} codes/s")
    print(f"build_dynamic:                  {best_rate(dynamic_codes):>12,.0f} codes/s")
    print(f"parse_brcode:                   {best_rate(parse_codes):>12,.0f} codes/s")
    print(f"baseline (template fill + CRC): {floor:>12,.0f} codes/s")
    print(f"ratio build_static/baseline:    {static / floor:.2f}")
    print(f"CRC alone, pure-Python table:   {best_rate(python_crc_codes):>12,.0f} codes/s")
    verdict = "meets" if static >= TARGET_PER_S else "MISSES"
    print(f"target {TARGET_PER_S:,} codes/s: {verdict}")


if __name__ == "__main__":
    main()
