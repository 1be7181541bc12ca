"""Small built-in name lists for generated users."""

from __future__ import annotations

import random
import uuid

FIRST_NAMES = (
    "Ada", "Alan", "Alice", "Amara", "Ana", "Arjun", "Beatriz", "Bob", "Carlos", "Chen",
    "Chloe", "Daniel", "Diego", "Elena", "Emma", "Farah", "Felix", "Grace", "Hana", "Hugo",
    "Ines", "Ivan", "Jamal", "Julia", "Kenji", "Laura", "Leila", "Liam", "Lucia", "Marco",
    "Maria", "Mei", "Mohamed", "Nadia", "Noah", "Olga", "Omar", "Priya", "Quentin", "Rosa",
    "Sam", "Sofia", "Tariq", "Thomas", "Uma", "Victor", "Wei", "Yara", "Yusuf", "Zoe",
)  # fmt: skip

LAST_NAMES = (
    "Adams", "Alvarez", "Bakker", "Brown", "Chen", "Costa", "Dubois", "Edwards", "Fischer",
    "Garcia", "Gupta", "Hansen", "Haddad", "Ito", "Ivanova", "Jensen", "Johnson", "Kim",
    "Kowalski", "Lee", "Lopez", "Martin", "Moreau", "Murphy", "Nakamura", "Nguyen", "Novak",
    "Okafor", "Olsen", "Patel", "Perez", "Quinn", "Rossi", "Santos", "Schmidt", "Silva",
    "Singh", "Smith", "Tanaka", "Taylor", "Torres", "Usman", "Varga", "Wagner", "Walker",
    "Wang", "Weber", "Xu", "Yilmaz", "Zhang",
)  # fmt: skip


def person(rng: random.Random, index: int) -> tuple[str, str, str]:
    """``(first, last, email)`` for generated user number ``index``."""
    first = FIRST_NAMES[rng.randrange(len(FIRST_NAMES))]
    last = LAST_NAMES[rng.randrange(len(LAST_NAMES))]
    return first, last, f"{first.lower()}.{last.lower()}{index}@example.com"


def uuid4(rng: random.Random) -> str:
    """A version-4 UUID string drawn from ``rng`` (deterministic for a seeded rng)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
