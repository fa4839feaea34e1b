"""How a sales file's values are cleaned, one function per kind of field, for one value (the
record model) and for an Arrow array (the bulk path). Both do the same steps in the same order,
so a value comes out the same whichever path cleaned it.

- every value: surrounding whitespace removed;
- free text (seller, product, payment method, city): inner runs of whitespace become one space;
- people and cities written all in capitals or all in small letters are title-cased, the
  Portuguese particles (da, das, de, do, dos, e) kept small: ``MARIA DA SILVA`` and
  ``maria da silva`` become ``Maria da Silva``; mixed case is kept as written (``McDonald``);
- UF in capitals; the category takes the catalogue's spelling (matched ignoring case).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from pulso.etl.layout import PARTICLES, WHITESPACE_RUN, python_pattern

_Transform = Callable[[pa.Array], pa.Array]
_WHITESPACE_RUN_RE: Final = re.compile(python_pattern(WHITESPACE_RUN))
_PARTICLE_RULES: Final = tuple(
    (f" {p.title()}( |$)", f" {p}\\1", re.compile(f" {p.title()}( |$)")) for p in PARTICLES
)


# --- one value ------------------------------------------------------------------------------


def clean_token(value: str) -> str:
    """Identifiers, timestamps, numbers: surrounding whitespace removed."""
    return value.strip()


def clean_text(value: str) -> str:
    """Free text: surrounding whitespace removed, inner runs made one space."""
    return _WHITESPACE_RUN_RE.sub(" ", value).strip(" ")


def clean_name(value: str) -> str:
    """A person's or a city's name (see the module docstring)."""
    text = clean_text(value)
    if not (text.isupper() or text.islower()):
        return text
    titled = text.title()
    for _, replacement, pattern in _PARTICLE_RULES:
        titled = pattern.sub(replacement, titled)
    return titled


def clean_uf(value: str) -> str:
    return clean_text(value).upper()


def category_key(value: str) -> str:
    """What a category is matched on: its cleaned text in small letters."""
    return clean_text(value).lower()


# --- an Arrow array (plain or dictionary-encoded: then only the dictionary is touched) ------


def arrow_token(values: pa.Array) -> pa.Array:
    return _on_values(values, pc.utf8_trim_whitespace)


def arrow_text(values: pa.Array) -> pa.Array:
    return _on_values(values, _arrow_text)


def arrow_name(values: pa.Array) -> pa.Array:
    return _on_values(values, _arrow_name)


def arrow_uf(values: pa.Array) -> pa.Array:
    return _on_values(values, lambda v: pc.utf8_upper(_arrow_text(v)))


def arrow_category_key(values: pa.Array) -> pa.Array:
    return _on_values(values, lambda v: pc.utf8_lower(_arrow_text(v)))


def _arrow_text(values: pa.Array) -> pa.Array:
    return pc.utf8_trim(pc.replace_substring_regex(values, WHITESPACE_RUN, " "), " ")


def _arrow_name(values: pa.Array) -> pa.Array:
    text = _arrow_text(values)
    titled = pc.utf8_title(text)
    for pattern, replacement, _ in _PARTICLE_RULES:
        titled = pc.replace_substring_regex(titled, pattern, replacement)
    single_case = pc.or_(pc.utf8_is_upper(text), pc.utf8_is_lower(text))
    return pc.if_else(single_case, titled, text)


def _on_values(values: pa.Array, transform: _Transform) -> pa.Array:
    if isinstance(values, pa.DictionaryArray):
        return pa.DictionaryArray.from_arrays(values.indices, transform(values.dictionary))
    return transform(values)
