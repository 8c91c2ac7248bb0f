"""100,000 random and mutated AT lines through the full module on a manual clock (manual §2.2:
every command line gets exactly one final result code; the engine never raises). A seeded
`random.Random` loop instead of hypothesis keeps the 100k run fast and reproducible."""

from __future__ import annotations

import logging
import random

import pytest

from emulator.at.results import is_final
from emulator.module.module import Module
from tests.unit.emulator.test_at_fuzz import SEEDS, fresh_module

LINES = 100_000
LINES_PER_MODULE = 500  # a fresh module now and then, so every state is visited again
SEED = 20240501
ALPHABET = ',"=?+0123456789-xAT; \t中\x00\x7f;:.EI'


def mutate(rng: random.Random, line: str) -> str:
    chars = list(line)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        pos = rng.randint(0, len(chars))
        if op == 0:
            chars.insert(pos, rng.choice(ALPHABET))
        elif op == 1 and pos < len(chars):
            del chars[pos]
        elif op == 2 and pos < len(chars):
            chars[pos] = rng.choice(ALPHABET)
        elif op == 3 and chars:
            cut = rng.randint(0, len(chars))
            chars = chars[:cut] if rng.random() < 0.5 else chars[cut:]
    return "".join(chars)


def random_line(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.35:
        text = rng.choice(SEEDS)  # valid lines move the module through its states
    elif roll < 0.85:
        text = mutate(rng, rng.choice(SEEDS))
    elif roll < 0.95:
        text = "AT" + "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40)))
    else:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 60))).translate(None, b"\r\n\x08")
    return text.encode("utf-8").translate(None, b"\r\n\x08")


def run_batch(rng: random.Random, count: int) -> tuple[int, int]:
    responses: list[str] = []
    module: Module = fresh_module(responses)
    expected = 0
    for _ in range(count):
        line = random_line(rng)
        if line.decode("utf-8", errors="replace").strip(" \t"):
            expected += 1
        data = line + b"\r"
        if rng.random() < 0.2:
            cut = rng.randint(0, len(data))
            module.feed(data[:cut])
            module.feed(data[cut:])
        else:
            module.feed(data)
    return expected, sum(1 for r in responses if is_final(r))


def test_100k_random_and_mutated_lines_each_get_one_final_result_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="emulator")
    rng = random.Random(SEED)
    total = 0
    for _ in range(LINES // LINES_PER_MODULE):
        expected, finals = run_batch(rng, LINES_PER_MODULE)
        assert finals == expected
        total += expected
    assert total > LINES * 0.9
    crashed = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert crashed == [], "a handler raised (the engine answered ERROR / 100): " + "; ".join(crashed[:5])
